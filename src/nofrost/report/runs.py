"""Summaries of run directories written by ``nofrost train``."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

import yaml

from nofrost.evaluate.result import EvaluationResult
from nofrost.evaluate.suites import display_name
from nofrost.files import BEST_DIR
from nofrost.report.figures import accuracy_chart, histograms
from nofrost.report.tables import Table, metrics_table, percent


def load_run(run_dir: str | Path) -> dict[str, Any]:
    """Config, per-epoch metrics and (when evaluated) the evaluation of one run directory; with
    ``best``, the best checkpoint's ``best.json`` and evaluation when the run kept one."""
    run = Path(run_dir)
    config_path = run / "config.yaml"
    if not config_path.is_file():
        raise FileNotFoundError(f"{str(run)!r} is not a nofrost run directory (no config.yaml); pass the --out of `nofrost train`")
    metrics_path = run / "metrics.jsonl"
    best_info = run / BEST_DIR / "best.json"
    return {
        "dir": str(run),
        "config": yaml.safe_load(config_path.read_text()),
        "metrics": [json.loads(l) for l in metrics_path.read_text().splitlines() if l.strip()] if metrics_path.exists() else [],
        "eval": _read_result(run / "eval.json"),
        "best": {**json.loads(best_info.read_text()), "eval": _read_result(run / BEST_DIR / "eval.json")}
        if best_info.is_file() else None,
    }


def _read_result(path: Path) -> EvaluationResult | None:
    return EvaluationResult.load(path) if path.exists() else None


def summarize_runs(runs: list[dict[str, Any]]) -> Table:
    """One row per run (two for a run that kept its best checkpoint): what was trained, how
    long, and how it evaluated."""
    attack_labels: list[str] = []
    for run in runs:
        for evaluation in (run["eval"], run["best"] and run["best"]["eval"]):
            if evaluation:
                attack_labels += [a for a in evaluation.attacks if a not in attack_labels]
    table = Table(["run", "method", "model", "norm", "epochs", "train s", "clean",
                   *(display_name(a) for a in attack_labels), "worst-case"])
    for run in runs:
        config = run["config"]
        rows = [(Path(run["dir"]).name, len(run["metrics"]), run["eval"] or EvaluationResult())]
        if run["best"]:  # eval.select: best keeps both checkpoints; show both
            best = run["best"]
            rows.append((f"{rows[0][0]} (best: epoch {best['epoch']}, on {best['select_on']})", best["epoch"],
                         best["eval"] or EvaluationResult()))
        for name, epochs, evaluation in rows:
            attacks = evaluation.accuracies
            table.add(
                name,
                _method_label(config["method"]),
                config["model"]["name"],
                config["model"]["norm"] or "default",
                epochs,
                f"{sum(m['seconds'] for m in run['metrics'][:epochs]):.0f}",
                _percent(evaluation.clean),
                *(percent(attacks.get(a)) for a in attack_labels),
                _percent(evaluation.worst_case),
            )
    return table


def _method_label(method: dict) -> str:
    """The method's name, with the DeepAugment variant that ran when it used one."""
    variant = method.get("deepaugment")
    return f"{method['name']} (DeepAugment: {variant})" if variant else method["name"]


def _percent(value: float) -> str:
    """As :func:`percent`, with "-" for a value not measured (NaN: the run was not evaluated)."""
    return percent(None if math.isnan(value) else value)


def runs_report(run_dirs: list[str | Path], output: str | Path) -> Path:
    """Write a Markdown or HTML report (by the output's suffix) with a table and a chart."""
    output = Path(output)
    runs = [load_run(d) for d in run_dirs]
    table = summarize_runs(runs)
    evaluated = [r for r in runs if r["eval"]]
    chart = None
    if evaluated:
        chart = accuracy_chart(
            [Path(r["dir"]).name for r in evaluated],
            {"clean": [r["eval"].clean for r in evaluated], "worst-case": [r["eval"].worst_case for r in evaluated]},
            output.with_suffix(".png"),
        )
    # The model properties (Table 5 layout, Figure 6 histograms) of the runs evaluated with metrics.
    measured = [r for r in evaluated if r["eval"].metrics]
    properties, histogram = None, None
    if measured:
        for r in measured:
            r["eval"].model = Path(r["dir"]).name
        properties = metrics_table([r["eval"] for r in measured])
        with_values = [r["eval"] for r in measured if r["eval"].per_example is not None]
        labels = [m for m in with_values[0].metrics] if with_values else []
        if labels:
            histogram = histograms(
                [(label, {e.model: e.per_example.metrics[label].tolist() for e in with_values
                          if label in e.per_example.metrics}) for label in labels],
                output.with_name(output.stem + "_properties.png"),
            )
    if output.suffix.lower() in (".html", ".htm"):
        image = f'<img src="{html.escape(chart.name)}">' if chart else ""
        extra = ""
        if properties is not None:
            extra = "<h2>Model properties</h2>" + properties.html()
            extra += f'<img src="{html.escape(histogram.name)}">' if histogram else ""
        output.write_text(f"<!doctype html><meta charset=utf-8><title>nofrost report</title>"
                          f"<h1>nofrost report</h1>{table.html()}{image}{extra}\n")
    else:
        image = f"\n\n![accuracy]({chart.name})" if chart else ""
        extra = ""
        if properties is not None:
            extra = f"\n\n## Model properties (means; Table 5 layout)\n\n{properties.markdown()}"
            extra += f"\n\n![histograms]({histogram.name})" if histogram else ""
        output.write_text(f"# nofrost report\n\nAccuracies in %.\n\n{table.markdown()}{image}{extra}\n")
    return output
