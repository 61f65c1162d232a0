"""``nofrost analyze``: model properties and BN statistics of one or more models, into one folder.

For every model (a run directory or anything :func:`nofrost.load_model` reads):

* with ``metrics``: :func:`nofrost.evaluate.evaluate` with no attack and those metrics, on the
  same examples for every model → ``<label>.eval.json`` (+ ``.npz``), the Table 5 layout
  (``properties.md``) and the Figure 6 histograms (``properties.png``);
* with ``bn_stats``: :func:`~nofrost.analysis.bn_stats.clean_vs_adversarial` →
  ``bn_stats.json`` / ``bn_stats.npz``, a per-position table and the distance over depth
  (``bn_distance.png``); for the models with batch norm, the running statistics of one layer
  as the Figure 1 scatter (``bn_running_stats.png``).

``analysis.md`` in the folder holds every table and links every figure.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from nofrost.analysis.bn_stats import NormStats, bn_layers, clean_vs_adversarial, relative_depth, running_stats
from nofrost.data import class_subset, load_dataset
from nofrost.evaluate import evaluate
from nofrost.evaluate.metrics import metric_info, parse_metric_specs
from nofrost.evaluate.specs import parse_spec
from nofrost.files import atomic_write_npz, atomic_write_text
from nofrost.models import load_model
from nofrost.analysis.outputs import BN_DISTANCE_FIGURE, BN_RUNNING_FIGURE
from nofrost.report.figures import depth_plot, histograms, running_stats_scatter
from nofrost.report.tables import Table, metrics_table


@dataclass
class AnalysisSummary:
    out: Path
    tables: dict[str, Table] = field(default_factory=dict)
    figures: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0



def model_labels(models: Sequence[str | Path]) -> list[str]:
    """A short, unique label per model: its folder name, with its parent's where names repeat."""
    paths = [Path(m) for m in models]
    names = [p.name or str(p) for p in paths]
    return [f"{p.parent.name}/{p.name}" if names.count(name) > 1 else name for p, name in zip(paths, names)]


def analyze(
    models: Sequence[str | Path],
    out_dir: str | Path,
    *,
    data: str = "cifar10-mini",
    data_root: str | None = None,
    split: str = "test",
    n: int | None = 500,
    classes: Sequence[int] | None = None,
    metrics: str | Sequence[str] | None = None,
    bn_stats: bool = False,
    layer: int | str = 15,
    eps: float = 8 / 255,
    norm: str = "linf",
    batch_size: int = 128,
    device: str | torch.device = "cpu",
    seed: int = 0,
    progress: bool = False,
) -> AnalysisSummary:
    """Analyse ``models`` into ``out_dir`` (see the module docstring); returns the tables and
    figures written. At least one of ``metrics`` and ``bn_stats`` must be asked for."""
    started = time.perf_counter()
    if not models:
        raise ValueError("give at least one model (a run directory) to analyze")
    metric_specs = parse_metric_specs(metrics)
    if not metric_specs and not bn_stats:
        raise ValueError("nothing to measure: ask for --metrics (e.g. margin,thickness,smoothness) and/or --bn-stats")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    labels = model_labels(models)
    if len(set(labels)) < len(labels):
        raise ValueError(f"two models share a label ({', '.join(labels)}); give each its own folder")
    loaded = [load_model(m, device=device) for m in models]
    if bn_stats:  # a bad --layer fails now, not after the measurements
        for model in loaded:
            if bn_layers(model):
                running_stats(model, layer)
    dataset = load_dataset(data, split, data_root)
    if classes is not None:
        dataset = class_subset(dataset, classes)
    summary = AnalysisSummary(out)

    if metric_specs:
        results = []
        for label, model in zip(labels, loaded):
            result = evaluate(model, dataset, attacks="clean", metrics=metric_specs, eps=eps, norm=norm, n=n,
                              batch_size=batch_size, device=device, seed=seed, progress=progress,
                              model_name=label, dataset_name=data, split=split)
            result.save(out / f"{label.replace('/', '_')}.eval.json")
            results.append(result)
        summary.tables["properties"] = metrics_table(results)
        summary.figures["properties"] = histograms(
            [(_panel_title(spec.label), {r.model: r.per_example.metrics[spec.label].tolist() for r in results})
             for spec in metric_specs],
            out / "properties.png",
        )

    if bn_stats:
        stats = [clean_vs_adversarial(model, dataset, n=n, eps=eps, norm=norm, batch_size=batch_size,
                                      device=device, seed=seed, model_name=label, progress=progress)
                 for label, model in zip(labels, loaded)]
        _save_stats(stats, out)
        summary.tables["bn_stats"] = stats_table(stats)
        summary.figures["bn_distance"] = depth_plot(
            [(s.model, relative_depth(len(s.layers)), [layer.distance for layer in s.layers]) for s in stats],
            out / BN_DISTANCE_FIGURE, ylabel="clean vs adversarial distance (sym. KL per channel)",
            title=f"{data} {split}, n = {stats[0].n}, {stats[0].attack}",
        )
        bn_models = [(label, model) for label, model, s in zip(labels, loaded, stats) if s.kind == "bn"]
        if bn_models:
            scatter = []
            for label, model in bn_models:
                name, mean, var = running_stats(model, layer)
                scatter.append((f"{label} ({name})", mean.tolist(), var.tolist()))
            summary.figures["bn_running_stats"] = running_stats_scatter(
                scatter, out / BN_RUNNING_FIGURE, title=f"running statistics of BN layer {layer}")

    summary.seconds = time.perf_counter() - started
    _write_markdown(summary, out / "analysis.md")
    return summary


def _panel_title(label: str) -> str:
    info = metric_info(parse_spec(label).name)
    return f"{info.display} ({label}): {'larger' if info.higher_is_better else 'smaller'} is better"


def stats_table(stats: list[NormStats]) -> Table:
    """One row per model and position: channels, the mean over channels of each statistic (the
    running ones where the position is a BN layer) and the clean-vs-adversarial distance."""
    table = Table(["model", "position", "channels", "clean mean", "adv mean", "running mean", "clean var",
                   "adv var", "running var", "distance"])
    def mean(value):
        return "-" if value is None else f"{float(value.mean()):.4f}"

    for s in stats:
        for layer in s.layers:
            table.add(s.model, layer.name, layer.channels, mean(layer.clean_mean), mean(layer.adv_mean),
                      mean(layer.running_mean), mean(layer.clean_var), mean(layer.adv_var), mean(layer.running_var),
                      f"{layer.distance:.4g}")
    return table


def _save_stats(stats: list[NormStats], out: Path) -> None:
    atomic_write_text(out / "bn_stats.json", json.dumps([s.to_json() for s in stats], indent=2) + "\n")
    atomic_write_npz(out / "bn_stats.npz", {f"{s.model}/{k}": v for s in stats for k, v in s.arrays().items()})


def _write_markdown(summary: AnalysisSummary, path: Path) -> None:
    parts = ["# nofrost analyze", ""]
    if "properties" in summary.tables:
        parts += ["## Model properties (Table 5 layout: means over the examples)", "",
                  summary.tables["properties"].markdown(), "", "![histograms](properties.png)", ""]
    if "bn_stats" in summary.tables:
        parts += ["## Clean vs adversarial statistics per position", "", summary.tables["bn_stats"].markdown(), "",
                  f"![distance over depth]({BN_DISTANCE_FIGURE})", ""]
        if "bn_running_stats" in summary.figures:
            parts += [f"![running statistics]({BN_RUNNING_FIGURE})", ""]
    parts.append(f"{summary.seconds:.0f} s in all.")
    atomic_write_text(path, "\n".join(parts) + "\n")
