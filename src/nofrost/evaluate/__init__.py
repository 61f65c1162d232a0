"""Robustness evaluation: attacks, per-example worst case and a self-audit."""

from nofrost.evaluate.robustness import AttackSpec, evaluate, parse_attack_specs

__all__ = ["AttackSpec", "evaluate", "parse_attack_specs"]
