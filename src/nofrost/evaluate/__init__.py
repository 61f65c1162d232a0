"""Robustness evaluation: attacks, per-example worst case and metrics, a self-audit, typed results."""

from nofrost.evaluate.result import AttackResult, AuditCheck, EvaluationResult, PerExample
from nofrost.evaluate.robustness import evaluate, parse_attack_specs
from nofrost.evaluate.specs import AttackSpec
from nofrost.evaluate.suites import expand_suites, list_suites

__all__ = [
    "AttackResult", "AttackSpec", "AuditCheck", "EvaluationResult", "PerExample", "evaluate",
    "expand_suites", "list_suites", "parse_attack_specs",
]
