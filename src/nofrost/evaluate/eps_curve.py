"""Robust accuracy as ε grows: the NoFrost paper's Figure 7 (ε from 8/255 to 16/255).

:func:`eps_curve` evaluates one model at each ε of a list with the same examples, attacks and
seed (one :func:`~nofrost.evaluate.evaluate` call per ε, each with its own audit) and returns
an :class:`EpsCurve`: the per-ε :class:`~nofrost.evaluate.result.EvaluationResult` objects,
one curve per attack (and the worst case), JSON round trip and a plot.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from torch import nn
from torch.utils.data import Dataset

from nofrost.evaluate.result import EvaluationResult
from nofrost.evaluate.robustness import evaluate
from nofrost.files import atomic_write_text

__all__ = ["EpsCurve", "eps_curve"]

WORST_CASE = "worst-case"
KIND = "eps-curve"


@dataclass
class EpsCurve:
    """One evaluation per ε, in increasing order of ε."""

    results: list[EvaluationResult] = field(default_factory=list)

    @property
    def eps(self) -> list[float]:
        return [r.eps for r in self.results]

    @property
    def labels(self) -> list[str]:
        """The attacks' labels (the same at every ε)."""
        return list(self.results[0].attacks) if self.results else []

    def curve(self, label: str) -> list[float]:
        """Robust accuracy of attack ``label`` (or ``"worst-case"``) at each ε."""
        if label == WORST_CASE:
            return [r.worst_case for r in self.results]
        if label not in self.labels:
            raise ValueError(f"no attack {label!r} in this curve; it has {', '.join(self.labels)}")
        return [r.attacks[label].accuracy for r in self.results]

    def to_json(self) -> dict[str, Any]:
        return {"kind": KIND, "eps": self.eps, "results": [r.to_json() for r in self.results]}

    @classmethod
    def from_json(cls, data: Any) -> EpsCurve:
        if not isinstance(data, dict) or data.get("kind") != KIND or not isinstance(data.get("results"), list):
            raise ValueError("not a nofrost ε curve (expected {'kind': 'eps-curve', 'results': [...]})")
        return cls([EvaluationResult.from_json(r) for r in data["results"]])

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        atomic_write_text(path, json.dumps(self.to_json(), indent=2) + "\n")
        return path


def eps_curve(model: nn.Module, dataset: Dataset, eps: Sequence[float], **kwargs: Any) -> EpsCurve:
    """:func:`~nofrost.evaluate.evaluate` at each ε of ``eps`` (sorted, without repeats), with the
    same ``kwargs`` (attacks, n, seed, ...) so that every point sees the same examples."""
    values = sorted({float(e) for e in eps})
    if not values:
        raise ValueError("eps_curve needs at least one ε")
    return EpsCurve([evaluate(model, dataset, eps=value, **kwargs) for value in values])
