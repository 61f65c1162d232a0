"""The typed evaluation result: what :func:`nofrost.evaluate.evaluate` returns.

Consumers (tables, reports, the quickstart, the γ sweep, the audit) read its fields, never
string keys. Its JSON form (:meth:`EvaluationResult.to_json`) is the contract of DESIGN.md
§2 "Evaluation result", extensions included; the schema is in ``docs/results.md``. Every
``eval.json`` written by earlier versions loads with :meth:`EvaluationResult.from_json`.

Per-example values (the clean and per-attack masks, each metric's values) are not part of the
JSON: :meth:`EvaluationResult.save` writes them beside it, ``eval.json`` → ``eval.npz``, when
any metric was measured, and :meth:`EvaluationResult.load` reads them back.

For scripts written against the earlier dictionary, ``result["clean"]`` and the like still
read the JSON form (the object is a read-only mapping over it); ``json.dumps`` needs
``result.to_json()``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from nofrost.evaluate.specs import parse_spec
from nofrost.evaluate.suites import column_group, display_name
from nofrost.files import atomic_write_npz, atomic_write_text

__all__ = ["AttackResult", "AuditCheck", "CorruptionResult", "EvaluationResult", "PerExample"]

# Keys of the JSON form that map onto fields; any other key is kept as it is in ``extra``.
_FIELDS = ("model", "dataset", "split", "n", "eps", "norm", "clean", "attacks", "attack_params",
           "worst_case", "metrics", "corruptions", "mean_corruption_accuracy", "mce", "uncorrupted_accuracy",
           "relative_mce", "audit",
           "seconds")  # fmt: skip


@dataclass(frozen=True)
class AuditCheck:
    """One self-audit check (:mod:`nofrost.evaluate.audit`): its name, verdict and why."""

    check: str
    passed: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"check": self.check, "passed": self.passed, "detail": self.detail}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AuditCheck:
        return cls(str(data["check"]), bool(data["passed"]), str(data.get("detail", "")))


@dataclass(frozen=True)
class AttackResult:
    """One attack's robust accuracy, under its stable label (the spec as written:
    ``"pgd:steps=50"``), with the options it ran with."""

    label: str
    accuracy: float
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The registered attack: ``"pgd"`` for ``"pgd:steps=50"``."""
        return parse_spec(self.label).name

    @property
    def display(self) -> str:
        """The column header: ``"PGD-50"``."""
        return display_name(self.label)

    @property
    def group(self) -> str:
        """The paper-table group: ``"white-box"``, ``"black-box"`` or ``"AutoAttack"``."""
        return column_group(self.label)


@dataclass(frozen=True)
class CorruptionResult:
    """Accuracy under one corruption at each severity evaluated (``{severity: accuracy}``)."""

    name: str
    by_severity: dict[int, float]

    @property
    def mean(self) -> float:
        """The mean over the severities evaluated."""
        return sum(self.by_severity.values()) / len(self.by_severity)

    def to_json(self) -> dict[str, float]:
        """``{"1": acc, ..., "5": acc, "mean": acc}``."""
        return {**{str(s): acc for s, acc in sorted(self.by_severity.items())}, "mean": self.mean}

    @classmethod
    def from_json(cls, name: str, data: Mapping[str, Any]) -> CorruptionResult:
        return cls(name, {int(s): float(acc) for s, acc in data.items() if s != "mean"})


@dataclass
class PerExample:
    """Per-example values, in the order of the evaluated examples: ``clean`` and ``robust[label]``
    are boolean masks, ``metrics[name]`` float values."""

    clean: Tensor
    robust: dict[str, Tensor] = field(default_factory=dict)
    metrics: dict[str, Tensor] = field(default_factory=dict)

    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays = {"clean": self.clean.cpu().numpy()}
        arrays |= {f"robust/{label}": mask.cpu().numpy() for label, mask in self.robust.items()}
        arrays |= {f"metric/{name}": v.cpu().numpy() for name, v in self.metrics.items()}
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> PerExample:
        def part(prefix: str) -> dict[str, Tensor]:
            return {k[len(prefix):]: torch.from_numpy(np.asarray(v)) for k, v in arrays.items() if k.startswith(prefix)}

        return cls(torch.from_numpy(np.asarray(arrays["clean"])), part("robust/"), part("metric/"))


@dataclass(eq=False)
class EvaluationResult(Mapping):
    """Clean and robust accuracy of one model on one dataset (fractions), and what goes with them.

    ``attacks`` maps each attack's label to its :class:`AttackResult`, in the order they ran;
    ``worst_case`` counts an example as robust only if every attack failed on it; ``metrics``
    holds the mean of each measured per-example metric (empty: none measured).

    A corruption benchmark (:mod:`nofrost.evaluate.corruptions`) fills ``corruptions`` (one
    :class:`CorruptionResult` per corruption evaluated, in benchmark order),
    ``mean_corruption_accuracy`` (the mean of their means) and, for ImageNet-C with all 15
    benchmark corruptions at all 5 severities, ``mce`` (AlexNet-normalized, a fraction); when
    the uncorrupted images were given too, ``uncorrupted_accuracy`` on them and ``relative_mce``.
    None or empty: not measured, and absent from the JSON.
    """

    model: str = ""
    dataset: str = ""
    split: str = ""
    n: int = 0
    eps: float = 8 / 255
    norm: str = "linf"
    clean: float = math.nan
    attacks: dict[str, AttackResult] = field(default_factory=dict)
    worst_case: float = math.nan
    metrics: dict[str, float] = field(default_factory=dict)
    corruptions: dict[str, CorruptionResult] = field(default_factory=dict)
    mean_corruption_accuracy: float | None = None
    mce: float | None = None
    uncorrupted_accuracy: float | None = None
    relative_mce: float | None = None
    audit: list[AuditCheck] = field(default_factory=list)
    seconds: float = 0.0
    per_example: PerExample | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def accuracies(self) -> dict[str, float]:
        """``{label: robust accuracy}`` in the order the attacks ran."""
        return {label: attack.accuracy for label, attack in self.attacks.items()}

    @property
    def failed_checks(self) -> list[AuditCheck]:
        return [check for check in self.audit if not check.passed]

    # ---- JSON ----------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The DESIGN.md evaluation JSON (``metrics`` only when measured)."""
        data: dict[str, Any] = {
            "model": self.model, "dataset": self.dataset, "split": self.split, "n": self.n,
            "eps": self.eps, "norm": self.norm, "clean": self.clean, "attacks": self.accuracies,
            "attack_params": {label: dict(a.params) for label, a in self.attacks.items()},
            "worst_case": self.worst_case,
        }  # fmt: skip
        if self.metrics:
            data["metrics"] = dict(self.metrics)
        if self.corruptions:
            data["corruptions"] = {name: c.to_json() for name, c in self.corruptions.items()}
        for key in ("mean_corruption_accuracy", "mce", "uncorrupted_accuracy", "relative_mce"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        data["audit"] = [check.to_json() for check in self.audit]
        data["seconds"] = self.seconds
        return {**data, **self.extra}

    @classmethod
    def from_json(cls, data: Any) -> EvaluationResult:
        """Read the JSON form; results of earlier versions (no ``norm``: ℓ∞, no
        ``attack_params``) load too. Raises ``ValueError`` for anything else."""
        if not isinstance(data, Mapping) or not {"clean", "attacks"} <= set(data):
            keys = sorted(data) if isinstance(data, Mapping) else type(data).__name__
            raise ValueError(f"not a nofrost evaluation result (expected the keys 'clean' and 'attacks'; got {keys})")
        try:
            params = data.get("attack_params") or {}
            return cls(
                model=str(data.get("model", "")), dataset=str(data.get("dataset", "")),
                split=str(data.get("split", "")), n=int(data.get("n", 0)),
                eps=float(data.get("eps", 8 / 255)), norm=str(data.get("norm", "linf")),
                clean=float(data["clean"]),
                attacks={str(label): AttackResult(str(label), float(acc), dict(params.get(label, {})))
                         for label, acc in dict(data["attacks"]).items()},
                worst_case=float(data.get("worst_case", math.nan)),
                metrics={str(k): float(v) for k, v in dict(data.get("metrics") or {}).items()},
                corruptions={str(name): CorruptionResult.from_json(str(name), dict(values))
                             for name, values in dict(data.get("corruptions") or {}).items()},
                mean_corruption_accuracy=_optional_float(data.get("mean_corruption_accuracy")),
                mce=_optional_float(data.get("mce")),
                uncorrupted_accuracy=_optional_float(data.get("uncorrupted_accuracy")),
                relative_mce=_optional_float(data.get("relative_mce")),
                audit=[AuditCheck.from_json(check) for check in data.get("audit", [])],
                seconds=float(data.get("seconds", 0.0)),
                extra={k: v for k, v in data.items() if k not in _FIELDS},
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"malformed nofrost evaluation result: {error}") from None

    # ---- files ---------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the JSON to ``path`` (atomically) and, when metrics were measured, the
        per-example values to ``path`` with suffix ``.npz``. Returns the JSON's path."""
        path = Path(path)
        atomic_write_text(path, json.dumps(self.to_json(), indent=2) + "\n")
        if self.per_example is not None and self.per_example.metrics:
            atomic_write_npz(per_example_path(path), self.per_example.to_arrays())
        return path

    @classmethod
    def load(cls, path: str | Path) -> EvaluationResult:
        """Read a result JSON, and its per-example ``.npz`` when there is one beside it."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"no evaluation result at {str(path)!r}") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{str(path)!r} is not a JSON evaluation result ({error})") from None
        result = cls.from_json(data)
        arrays_path = per_example_path(path)
        if arrays_path.is_file():
            try:
                with np.load(arrays_path, allow_pickle=False) as arrays:
                    result.per_example = PerExample.from_arrays(dict(arrays))
            except (OSError, ValueError, KeyError) as error:
                raise ValueError(f"{str(arrays_path)!r} is not a per-example file of nofrost ({error})") from None
        return result

    # ---- read-only mapping over the JSON form, for scripts written against the dict -------
    def __getitem__(self, key: str) -> Any:
        return self.to_json()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_json())

    def __len__(self) -> int:
        return len(self.to_json())


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def per_example_path(json_path: str | Path) -> Path:
    """Where the per-example values of the result at ``json_path`` live: ``eval.json`` →
    ``eval.npz``."""
    return Path(json_path).with_suffix(".npz")
