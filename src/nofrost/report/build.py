"""``nofrost report``: runs, sweeps, ε curves and analyses in the paper's layouts, one page.

:func:`build_report` turns what :func:`~nofrost.report.sources.load_sources` found into a
:class:`~nofrost.report.document.Report`, section by section:

- the scale of what was run, and what it is (each row's method, normalization, model, data);
- robustness in the layout of Tables 1–3, 6 and 7 (clean | white-box | black-box |
  AutoAttack), one table per threat model, with the self-audit's verdict on every row;
- distribution shift (the OOD columns of Figures 3–4): accuracy per dataset, mCE, accuracy
  per corruption and a corruption × severity heatmap per corruption benchmark;
- sweeps in the layout of Table 4 (mean ± std over seeds) and their trade-off curves
  (Figures 2 and 5, γ sweeps included);
- ε curves (Figure 7), model properties (Table 5, Figure 6), BN statistics (Figure 1);
- training curves from ``metrics.jsonl``;
- every audit check of every result.
"""

from __future__ import annotations

import math
import re
import tempfile
from pathlib import Path
from typing import Callable

from nofrost.analysis.outputs import BN_FIGURE_CAPTIONS
from nofrost.data import describe_dataset
from nofrost.evaluate.result import EvaluationResult
from nofrost.models import model_norm, norm_display
from nofrost.report.document import Figure, Report, Section
from nofrost.report.figures import accuracy_chart, corruption_heatmap, curves, histograms, training_curves
from nofrost.report.sources import Analysis, Run, Sources, load_sources
from nofrost.report.tables import (
    WARNING,
    Table,
    eps_curve_table,
    eps_label,
    evaluation_table,
    metrics_table,
    per_corruption_table,
    shift_table,
    sweep_table,
    threat_model,
)
from nofrost.report.tradeoff import tradeoff_plot

PAPER_SCALE = "The NoFrost paper's numbers are ImageNet runs (ResNet-26/50, 90 epochs, 8 GPUs)."


def write_report(paths: list[str | Path], output: str | Path, *, title: str | None = None) -> list[Path]:
    """Report on ``paths`` into ``output`` (``.html``: a self-contained page plus the same
    content as Markdown beside it; else Markdown). Returns the files written."""
    return build_report(load_sources(paths), title=title).write(output)


def build_report(sources: Sources, *, title: str | None = None) -> Report:
    report = Report(title or sources.title or "nofrost report")
    report.summary += [*sources.notes, *_scale_summary(sources)]
    results, shifts = _split_shifts(_labelled_results(sources))
    if sources.runs:
        report.sections.append(_runs_section(sources.runs))
    if results:
        report.sections.append(_robustness_section(results))
    for run in sources.runs:
        if run.shifts:
            shifts.setdefault(f"{run.label} ({run.name})", []).extend(run.shifts)
    if shifts:
        report.sections.append(_shift_section(shifts))
    for name, sweep in sources.sweeps:
        report.sections.append(_sweep_section(name, sweep))
    for name, curve in sources.curves:
        report.sections.append(_eps_curve_section(name, curve))
    measured = [r for r in results + [r for a in sources.analyses for r in a.results] if r.metrics]
    if measured:
        report.sections.append(_properties_section(measured))
    for analysis in sources.analyses:
        if analysis.bn_stats:
            report.sections.append(_bn_section(analysis))
    trained = [run for run in sources.runs if run.metrics]
    if trained:
        report.sections.append(_training_section(trained))
    audited = results + [r for _, s in sources.sweeps for r in _sweep_results(s)] + \
        [r for _, c in sources.curves for r in c.results] + [r for rs in shifts.values() for r in rs]
    if audited:
        report.sections.append(_audit_section(audited))
    return report


def _render(draw: Callable[..., Path], name: str, caption: str, *args, **kwargs) -> Figure:
    """Draw a figure with one of ``nofrost.report``'s figure functions and keep its PNG."""
    with tempfile.TemporaryDirectory() as folder:
        path = draw(*args, path=Path(folder) / "figure.png", **kwargs)
        return Figure(name, caption, path.read_bytes())


def _scale_summary(sources: Sources) -> list[str]:
    datasets = sorted({run.config.get("data", {}).get("name", "?") for run in sources.runs} |
                      {r.dataset for r in sources.results if r.dataset})
    if not datasets:
        return [PAPER_SCALE]
    full = [run for run in sources.runs if run.config.get("data", {}).get("name") == "imagenet"
            and run.config.get("optim", {}).get("epochs", 0) >= 90 and not run.config["data"].get("train_n")]
    if sources.runs and len(full) == len(sources.runs):
        return [f"Scale: ImageNet at the paper's budget. {PAPER_SCALE}"]
    return [f"Scale: {', '.join(datasets)}. {PAPER_SCALE} Numbers at a smaller scale show what that "
            f"scale shows; they neither replicate nor refute the paper."]


def _labelled_results(sources: Sources) -> list[EvaluationResult]:
    """Every evaluation of the runs (last and best checkpoints) and standalone results, each
    with ``model`` set to the row label the tables show ("NoFrost (runs/nf)")."""
    results = []
    for run in sources.runs:
        if run.eval is not None:
            run.eval.model = f"{run.label} ({run.name})"
            results.append(run.eval)
        if run.best and run.best.get("eval") is not None:
            best = run.best["eval"]
            best.model = f"{run.label} ({run.name}, best: epoch {run.best['epoch']} on {run.best['select_on']})"
            results.append(best)
    return results + list(sources.results)


def _split_shifts(results: list[EvaluationResult]) -> tuple[list[EvaluationResult], dict[str, list[EvaluationResult]]]:
    """Results on the attacked test sets, and those on distribution-shift datasets by model."""
    attacked, shifts = [], {}
    for result in results:
        if _is_shift(result):
            shifts.setdefault(result.model or "-", []).append(result)
        else:
            attacked.append(result)
    return attacked, shifts


def _is_shift(result: EvaluationResult) -> bool:
    if result.corruptions:
        return True
    try:
        return describe_dataset(result.dataset).distribution_shift
    except ValueError:  # a dataset this version does not know (or none recorded)
        return False


def _shift_section(shifts: dict[str, list[EvaluationResult]]) -> Section:
    section = Section("Distribution shift (Figures 3–4 columns)")
    section.text("Accuracy (%) on each distribution-shift dataset (for a corruption benchmark, the mean over the "
                 "corruptions and severities evaluated), and the mCE (ImageNet-C, AlexNet-normalised) where "
                 "measured; see docs/ood.md. A `-gen` dataset is generated here, not the published files.")
    section.table("Accuracy per dataset", shift_table(shifts))
    benchmarks = {f"{model}, {r.dataset}": r for model, rs in shifts.items() for r in rs if r.corruptions}
    if benchmarks:
        section.table("Accuracy (%) per corruption, mean over severities", per_corruption_table(benchmarks))
    for label, result in benchmarks.items():
        severities = sorted({s for c in result.corruptions.values() for s in c.by_severity})
        section.figure(_render(
            corruption_heatmap, f"corruptions-{_slug(label)}", f"{label}: accuracy (%) per corruption and severity",
            list(result.corruptions), severities,
            [[c.by_severity.get(s) for s in severities] for c in result.corruptions.values()]))
    return section


def _sweep_results(sweep) -> list[EvaluationResult]:
    return [run.result for run in sweep.runs] + [ref.result for ref in sweep.references]


def _runs_section(runs: list[Run]) -> Section:
    table = Table(["run", "what", "model", "normalization", "data and budget", "seed", "train time"])
    for run in runs:
        model = run.config["model"]
        seconds = run.train_seconds
        table.add(run.name, run.label, model["name"], norm_display(model_norm(model["name"], model.get("norm"))),
                  run.scale, run.config.get("runtime", {}).get("seed", "-"),
                  "-" if math.isnan(seconds) else _duration(seconds))
    return Section("Runs").table("What each run is", table)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def _robustness_section(results: list[EvaluationResult]) -> Section:
    section = Section("Robustness (Tables 1–3, 6, 7 layout)")
    section.text("Accuracy (%) on clean images and under each attack, grouped as in the paper: white-box "
                 "attacks, black-box attacks, AutoAttack. The worst case counts an example as robust only if "
                 "every attack failed on it. The audit column is the evaluation's self-check.")
    groups: dict[tuple[str, float], list[EvaluationResult]] = {}
    for result in results:
        groups.setdefault((result.norm, round(float(result.eps), 8)), []).append(result)
    for (norm, eps), members in sorted(groups.items()):
        table = evaluation_table(members)
        table.headers.append("audit")
        if table.groups:
            table.groups.append("")
        notes = []
        for row, result in zip(table.rows, members):
            failed = result.failed_checks
            row.append(f"{WARNING} {len(failed)} failed" if failed else ("ok" if result.audit else "-"))
            notes += [f"{WARNING} {result.model}: {c.check}: {c.detail}" for c in failed]
        section.table(f"{threat_model(members[0])}, {members[0].dataset or 'dataset not recorded'}", table, notes)
        section.figure(_accuracy_figure(members, f"accuracy-{norm}-{eps_label(eps, norm).replace('/', '-')}"))
    return section


def _accuracy_figure(results: list[EvaluationResult], name: str) -> Figure | None:
    if len(results) < 2:
        return None
    return _render(accuracy_chart, name, "Clean and worst-case accuracy per model",
                   [r.model for r in results], {"clean": [r.clean for r in results],
                                                "worst-case": [r.worst_case for r in results]})


def _sweep_section(name: str, sweep) -> Section:
    section = Section(f"Sweep: {sweep.name} ({name})")
    seeds = len(sweep.seeds)
    section.table(f"Accuracy (%), Table 4 layout{', mean ± std over ' + str(seeds) + ' seeds' if seeds > 1 else ''}",
                  sweep_table(sweep))
    if sweep.labels and len(sweep.settings) > 1:
        section.figure(_render(tradeoff_plot, f"tradeoff-{_slug(name)}",
                               "Accuracy–robustness trade-off (Figures 2 and 5): one point per setting"
                               + (", stars are the reference runs" if sweep.references else ""),
                               sweep, attacks=[*sweep.labels, "worst-case"]))
    return section


def _eps_curve_section(name: str, curve) -> Section:
    section = Section(f"ε curve: {name} (Figure 7)")
    section.table("Robust accuracy (%) as ε grows", eps_curve_table(curve))
    norm = curve.results[0].norm
    scale = 255 if norm == "linf" else 1
    series = {curve.results[0].attacks[label].display: curve.curve(label) for label in curve.labels}
    series["worst-case"] = curve.curve("worst-case")
    section.figure(_render(curves, f"eps-curve-{_slug(name)}", "Robust accuracy against ε",
                           [scale * e for e in curve.eps], series,
                           xlabel="ε (×1/255)" if norm == "linf" else "ε (ℓ2)", ylabel="accuracy (%)",
                           dashed=["worst-case"]))
    return section


def _properties_section(results: list[EvaluationResult]) -> Section:
    section = Section("Model properties (Table 5, Figure 6)")
    section.table("Means over the evaluated examples (↑ larger is better, ↓ smaller)", metrics_table(results))
    with_values = [r for r in results if r.per_example is not None and r.per_example.metrics]
    labels = list(dict.fromkeys(label for r in with_values for label in r.per_example.metrics))
    if labels:
        panels = [(label, {r.model: r.per_example.metrics[label].tolist() for r in with_values
                           if label in r.per_example.metrics}) for label in labels]  # fmt: skip
        section.figure(_render(histograms, "properties", "Per-example distributions (Figure 6)", panels))
    return section


def _bn_section(analysis: Analysis) -> Section:
    section = Section(f"BN statistics (Figure 1): {analysis.dir.name}")
    table = Table(["model", "kind", "positions", "mean distance", "largest distance at"])
    for stats in analysis.bn_stats:
        layers = stats["layers"]
        largest = max(layers, key=lambda layer: layer["distance"]) if layers else None
        table.add(stats["model"], stats["kind"], len(layers),
                  f"{sum(layer['distance'] for layer in layers) / max(len(layers), 1):.4g}",
                  largest["name"] if largest else "-")
    section.table("Clean vs adversarial feature statistics (symmetrised KL per channel, averaged)", table)
    for file_name, png in analysis.figures.items():
        section.figure(Figure(f"{_slug(analysis.dir.name)}-{Path(file_name).stem}", BN_FIGURE_CAPTIONS[file_name], png))
    return section


def _training_section(runs: list[Run]) -> Section:
    section = Section("Training curves")
    section.figure(_render(training_curves, "training", "Per-epoch loss and accuracies from metrics.jsonl",
                           [(f"{run.label} ({run.name})", run.metrics) for run in runs]))
    return section


def _audit_section(results: list[EvaluationResult]) -> Section:
    section = Section("Self-audit")
    table = Table(["model", "check", "verdict", "detail"])
    for result in results:
        for check in sorted(result.audit, key=lambda c: c.passed):
            table.add(result.model or "-", check.check, "ok" if check.passed else f"{WARNING} failed", check.detail)
    if table.rows:
        section.table("Every check of every evaluation (failed ones first)", table)
    else:
        section.text("No evaluation recorded audit checks.")
    return section


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"

