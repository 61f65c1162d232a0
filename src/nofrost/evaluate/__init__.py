"""Robustness evaluation: attacks, per-example worst case and a self-audit."""

from nofrost.evaluate.robustness import evaluate, parse_attack_specs
from nofrost.evaluate.specs import AttackSpec
from nofrost.evaluate.suites import expand_suites, list_suites

__all__ = ["AttackSpec", "evaluate", "expand_suites", "list_suites", "parse_attack_specs"]
