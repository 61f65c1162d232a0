"""What ``nofrost report`` reads: run directories, sweeps, ε curves, analyses, results.

:func:`load_sources` takes paths as a user gives them and sorts them by what they hold:

- a run directory of ``nofrost train`` (``config.yaml``; its ``eval.json``, ``best/``,
  ``metrics.jsonl``, distribution-shift results ``eval-<dataset>.json`` and an
  ``eps_curve.json`` when present);
- a sweep: a ``nofrost sweep`` folder (``sweep.json``) or a sweep JSON (``gamma_sweep.json``);
- an ε curve JSON (``nofrost evaluate --eps a,b,c``);
- an analysis folder of ``nofrost analyze`` (``analysis.md``: its ``*.eval.json`` with the
  model properties, ``bn_stats.json`` and figures);
- an evaluation result JSON (``nofrost evaluate --json``);
- a folder written by ``nofrost reproduce`` (``reproduce.json``): everything it lists.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nofrost.analysis.outputs import BN_FIGURE_CAPTIONS
from nofrost.evaluate.eps_curve import KIND as EPS_CURVE_KIND
from nofrost.evaluate.eps_curve import EpsCurve
from nofrost.evaluate.result import EvaluationResult
from nofrost.evaluate.sweep_result import KIND as SWEEP_KIND
from nofrost.evaluate.sweep_result import LEGACY_GAMMA_KIND, SweepResult
from nofrost.files import BEST_DIR

#: The file ``nofrost reproduce`` writes into its output folder: the report's title and inputs.
REPRODUCE_MANIFEST = "reproduce.json"
ANALYSIS_MARKER = "analysis.md"
EPS_CURVE_FILE = "eps_curve.json"
#: Distribution-shift evaluations of a run: ``RUN/eval-<dataset>.json`` (``nofrost evaluate``).
SHIFT_PREFIX = "eval-"


@dataclass
class Run:
    """One run directory: its config, per-epoch metrics and evaluations."""

    dir: Path
    config: dict[str, Any]
    metrics: list[dict[str, Any]]
    eval: EvaluationResult | None
    best: dict[str, Any] | None  # best.json of a run that kept its best checkpoint, with "eval"
    shifts: list[EvaluationResult] = field(default_factory=list)  # RUN/eval-<dataset>.json

    @property
    def name(self) -> str:
        return self.dir.name

    @property
    def label(self) -> str:
        """What the run is, as the paper names it: "NoFrost", "SAT w/ BN", "MBNAT"."""
        from nofrost.methods import method_label
        from nofrost.models import model_norm

        model, method = self.config["model"], self.config["method"]
        label = method_label(method["name"], model_norm(model["name"], model.get("norm")))
        variant = method.get("deepaugment")  # which DeepAugment ran, for the methods that use it
        return f"{label} (DeepAugment: {variant})" if variant else label

    @property
    def train_seconds(self) -> float:
        return train_seconds(self.metrics)

    @property
    def scale(self) -> str:
        """The training budget in words: "cifar10-mini, 2,000 images, 5 epochs"."""
        data, optim = self.config.get("data", {}), self.config.get("optim", {})
        images = f"{data['train_n']:,} images" if data.get("train_n") else "all images"
        return f"{data.get('name', '?')}, {images}, {optim.get('epochs', '?')} epochs"


@dataclass
class Analysis:
    """An ``nofrost analyze`` folder: per-model results with metrics and the BN statistics."""

    dir: Path
    results: list[EvaluationResult]
    bn_stats: list[dict[str, Any]]
    figures: dict[str, bytes]  # file name -> PNG of the figures analyze drew


@dataclass
class Sources:
    runs: list[Run] = field(default_factory=list)
    results: list[EvaluationResult] = field(default_factory=list)  # standalone eval.json files
    sweeps: list[tuple[str, SweepResult]] = field(default_factory=list)
    curves: list[tuple[str, EpsCurve]] = field(default_factory=list)
    analyses: list[Analysis] = field(default_factory=list)
    title: str | None = None  # from a reproduce manifest
    notes: list[str] = field(default_factory=list)  # from a reproduce manifest

    @property
    def empty(self) -> bool:
        return not (self.runs or self.results or self.sweeps or self.curves or self.analyses)


def train_seconds(metrics: list[dict[str, Any]]) -> float:
    """Training time of a run from its per-epoch metrics (NaN when it has none)."""
    return sum(m.get("seconds", 0.0) for m in metrics) if metrics else math.nan


def load_run(run_dir: str | Path) -> Run:
    """Config, per-epoch metrics and (when evaluated) the evaluation of one run directory; with
    ``best``, the best checkpoint's ``best.json`` and evaluation when the run kept one."""
    run = Path(run_dir)
    config_path = run / "config.yaml"
    if not config_path.is_file():
        raise FileNotFoundError(f"{str(run)!r} is not a nofrost run directory (no config.yaml); "
                                f"pass the --out of `nofrost train`")
    metrics_path = run / "metrics.jsonl"
    best_info = run / BEST_DIR / "best.json"
    return Run(
        dir=run,
        config=yaml.safe_load(config_path.read_text()),
        metrics=[json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
        if metrics_path.exists() else [],
        eval=_result_if_present(run / "eval.json"),
        best={**json.loads(best_info.read_text()), "eval": _result_if_present(run / BEST_DIR / "eval.json")}
        if best_info.is_file() else None,
        shifts=[EvaluationResult.load(path) for path in sorted(run.glob(f"{SHIFT_PREFIX}*.json"))],
    )  # fmt: skip


def _result_if_present(path: Path) -> EvaluationResult | None:
    return EvaluationResult.load(path) if path.exists() else None


def load_sources(paths: list[str | Path]) -> Sources:
    """Sort ``paths`` by what they hold (see the module docstring); anything else is a
    ValueError naming what ``nofrost report`` reads."""
    sources = Sources()
    for path in map(Path, paths):
        _add(sources, path)
    if sources.empty:
        raise ValueError("nothing to report: the paths hold no evaluated run, result, sweep, ε curve or analysis")
    return sources


def _add(sources: Sources, path: Path) -> None:
    if path.is_dir():
        if (path / REPRODUCE_MANIFEST).is_file():
            manifest = _read_json(path / REPRODUCE_MANIFEST)
            sources.title = sources.title or manifest.get("title")
            sources.notes += list(manifest.get("notes", []))
            for entry in manifest.get("inputs", []):
                if (path / entry).exists():
                    _add(sources, path / entry)
                else:
                    sources.notes.append(f"`{entry}` has not run yet.")
        elif (path / "config.yaml").is_file():
            sources.runs.append(load_run(path))
            if (path / EPS_CURVE_FILE).is_file():
                sources.curves.append((path.name, EpsCurve.from_json(_read_json(path / EPS_CURVE_FILE))))
        elif (path / "sweep.json").is_file():
            sources.sweeps.append((path.name, SweepResult.load(path / "sweep.json")))
        elif (path / ANALYSIS_MARKER).is_file():
            sources.analyses.append(_load_analysis(path))
        else:
            raise ValueError(f"{str(path)!r} is not something `nofrost report` reads: expected a run directory "
                             f"(config.yaml), a sweep folder (sweep.json), an analysis folder (analysis.md), a "
                             f"`nofrost reproduce` folder ({REPRODUCE_MANIFEST}) or a result JSON file")
    elif path.is_file():
        data = _read_json(path)
        kind = data.get("kind") if isinstance(data, dict) else None
        if kind in (SWEEP_KIND, LEGACY_GAMMA_KIND):
            sources.sweeps.append((path.stem, SweepResult.from_json(data)))
        elif kind == EPS_CURVE_KIND:
            sources.curves.append((path.stem, EpsCurve.from_json(data)))
        else:
            sources.results.append(EvaluationResult.from_json(data))
    else:
        raise FileNotFoundError(f"no such file or folder: {str(path)!r}")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read {str(path)!r} as JSON: {error}") from None


def _load_analysis(folder: Path) -> Analysis:
    results = [EvaluationResult.load(p) for p in sorted(folder.glob("*.eval.json"))]
    stats = _read_json(folder / "bn_stats.json") if (folder / "bn_stats.json").is_file() else []
    figures = {name: (folder / name).read_bytes() for name in BN_FIGURE_CAPTIONS if (folder / name).is_file()}
    return Analysis(folder, results, stats, figures)
