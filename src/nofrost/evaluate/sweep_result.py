"""Typed results of a sweep: evaluations over a grid of settings and seeds.

Two kinds of sweep produce a :class:`SweepResult`, so that tables, trade-off plots and reports
have one code path:

- ``nofrost sweep`` trains one run per (setting, seed) over config keys (``method.lam``, ...);
- ``nofrost gamma-sweep`` evaluates one MBNAT model at each test-time γ (grid key ``gamma``),
  with other runs (NoFrost) evaluated alongside as ``references``.

The JSON (``sweep.json``, ``gamma_sweep.json``) is ``{"kind": "sweep", "label", "grid",
"seeds", "runs": [{"setting", "seed", "train_seconds", "result"}], "references": [{"label",
"run", "result"}]}``, each ``result`` an evaluation result as in ``docs/results.md``. Files
written before γ sweeps were sweeps (``"kind": "gamma-sweep"``) still load.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nofrost.evaluate.result import EvaluationResult
from nofrost.files import atomic_write_text

__all__ = ["SweepPoint", "SweepReference", "SweepResult", "SweepRun", "WORST_CASE"]

KIND = "sweep"
LEGACY_GAMMA_KIND = "gamma-sweep"
WORST_CASE = "worst-case"  # pseudo-attack label: the per-example worst case over all attacks


@dataclass(frozen=True)
class SweepPoint:
    """One grid setting (``(key, value)`` pairs as written) and one seed."""

    setting: tuple[tuple[str, str], ...]
    seed: int

    @property
    def label(self) -> str:
        return setting_label(self.setting)

    @property
    def overrides(self) -> list[str]:
        return [f"{k}={v}" for k, v in self.setting] + [f"runtime.seed={self.seed}"]

    def run_dir(self, out: Path) -> Path:
        return out / self.label / f"seed{self.seed}"


def setting_label(setting: tuple[tuple[str, str], ...]) -> str:
    """``"method.lam=0.5,optim.lr=0.1"``; ``"base"`` for the empty setting."""
    return ",".join(f"{k}={v}" for k, v in setting) or "base"


@dataclass
class SweepRun:
    point: SweepPoint
    result: EvaluationResult
    train_seconds: float = math.nan  # NaN: nothing was trained (an evaluation-time sweep)


@dataclass
class SweepReference:
    """A run evaluated alongside the sweep and drawn as a single point (e.g. NoFrost next to
    the MBNAT γ curve)."""

    label: str
    run: str
    result: EvaluationResult


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def accuracy_of(result: EvaluationResult, what: str) -> float:
    """``"clean"``, ``"worst-case"`` or an attack label's accuracy in ``result``."""
    if what == "clean":
        return result.clean
    if what == WORST_CASE:
        return result.worst_case
    return result.attacks[what].accuracy


@dataclass
class SweepResult:
    """The evaluations of a sweep, and their aggregate over seeds per setting."""

    grid: dict[str, list[str]]
    seeds: list[int]
    runs: list[SweepRun] = field(default_factory=list)
    label: str = ""  # the curve's name in plots ("MBNAT (logits)"); default: the swept keys
    references: list[SweepReference] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.label or ", ".join(self.grid) or "sweep"

    @property
    def settings(self) -> list[tuple[tuple[str, str], ...]]:
        seen: list[tuple[tuple[str, str], ...]] = []
        for run in self.runs:
            if run.point.setting not in seen:
                seen.append(run.point.setting)
        return seen

    @property
    def labels(self) -> list[str]:
        """Attack labels, in the order of the first run."""
        return list(self.runs[0].result.attacks) if self.runs else []

    def results_for(self, setting: tuple[tuple[str, str], ...]) -> list[EvaluationResult]:
        return [run.result for run in self.runs if run.point.setting == setting]

    def aggregate(self, setting: tuple[tuple[str, str], ...], what: str) -> tuple[float, float]:
        """Mean and sample standard deviation over seeds of ``"clean"``, ``"worst-case"`` or an
        attack label at one setting."""
        return _mean_std([accuracy_of(r, what) for r in self.results_for(setting)])

    def point_tag(self, setting: tuple[tuple[str, str], ...]) -> str:
        """A setting's tag on a curve: ``γ=0.5`` for a γ sweep, else the swept values."""
        if [k for k, _ in setting] == ["gamma"]:
            return f"γ={setting[0][1]}"
        return ",".join(v for _, v in setting) or "base"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": KIND, "label": self.label, "grid": self.grid, "seeds": self.seeds,
            "runs": [{"setting": dict(r.point.setting), "seed": r.point.seed,
                      "train_seconds": None if math.isnan(r.train_seconds) else r.train_seconds,
                      "result": r.result.to_json()} for r in self.runs],
            "references": [{"label": r.label, "run": r.run, "result": r.result.to_json()} for r in self.references],
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: Any) -> SweepResult:
        if isinstance(data, dict) and data.get("kind") == LEGACY_GAMMA_KIND:
            return _from_legacy_gamma_sweep(data)
        if not isinstance(data, dict) or data.get("kind") != KIND:
            raise ValueError("not a nofrost sweep result (expected {'kind': 'sweep', ...})")
        runs = [SweepRun(SweepPoint(tuple((k, str(v)) for k, v in r["setting"].items()), int(r["seed"])),
                         EvaluationResult.from_json(r["result"]), _seconds(r.get("train_seconds")))
                for r in data.get("runs", [])]  # fmt: skip
        references = [SweepReference(r["label"], r["run"], EvaluationResult.from_json(r["result"]))
                      for r in data.get("references", [])]  # fmt: skip
        return cls({k: [str(v) for v in vs] for k, vs in data["grid"].items()}, [int(s) for s in data["seeds"]],
                   runs, label=data.get("label", ""), references=references)  # fmt: skip

    @classmethod
    def load(cls, path: str | Path) -> SweepResult:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"cannot read sweep result {str(path)!r}: {error}") from None
        return cls.from_json(data)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        atomic_write_text(path, json.dumps(self.to_json(), indent=2) + "\n")
        return path


def _seconds(value: Any) -> float:
    """A run's training seconds from JSON; null (nothing trained) and absent read as NaN."""
    return math.nan if value is None else float(value)


def _summary_result(entry: dict[str, Any], data: dict[str, Any], model: str) -> EvaluationResult:
    """An evaluation result from one point of a legacy γ-sweep file (accuracies only)."""
    return EvaluationResult.from_json({
        "model": model, "dataset": data.get("dataset", ""), "split": data.get("split", ""),
        "n": entry.get("n", data.get("n", 0)), "eps": data.get("eps", math.nan), "clean": entry["clean"],
        "attacks": entry["attacks"], "worst_case": entry["worst_case"],
        "audit": [{"check": c, "passed": False, "detail": "failed (detail not kept in this file)"}
                  for c in entry.get("audit_failed", [])],
    })  # fmt: skip


def _from_legacy_gamma_sweep(data: dict[str, Any]) -> SweepResult:
    seed = int(data.get("seed", 0))
    gammas = [f"{float(p['gamma']):g}" for p in data["points"]]
    runs = [SweepRun(SweepPoint((("gamma", g),), seed),
                     _summary_result(p, data, f"{Path(str(data.get('model', ''))).name}@gamma={g}"))
            for g, p in zip(gammas, data["points"])]  # fmt: skip
    references = [SweepReference(o["label"], o["run"], _summary_result(o, data, o["label"]))
                  for o in data.get("nofrost", [])]  # fmt: skip
    return SweepResult({"gamma": gammas}, [seed], runs, label=data.get("label", ""), references=references)
