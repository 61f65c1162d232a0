"""Multi-step jobs built from the library's pieces: evaluate a finished run, the quickstart."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from nofrost.config import Config, load_config
from nofrost.console import eta_text, progress_enabled
from nofrost.data import load_dataset
from nofrost.distributed import resolve_device
from nofrost.evaluate import evaluate
from nofrost.evaluate.result import EvaluationResult
from nofrost.files import BEST_DIR
from nofrost.models import load_model
from nofrost.report.figures import accuracy_chart
from nofrost.report.tables import Table, percent
from nofrost.train import train
from nofrost.train.precision import step_uses_bf16


def evaluate_run(run_dir: str | Path, config: Config, *, progress: bool = False) -> EvaluationResult:
    """Evaluate a run with its config's eval section and return the result of the checkpoint
    ``eval.select`` names.

    The last epoch's model is written to RUN/eval.json; a run that kept its best checkpoint
    (``eval.select: best``) has that one evaluated too, into RUN/best/eval.json, so that
    reports can show both.
    """
    run = Path(run_dir)
    device = resolve_device(config.runtime.device)
    dataset = load_dataset(config.data.name, "test", config.data.root, image_size=config.data.image_size)
    results = {}
    for which, directory in (("last", run), ("best", run / BEST_DIR)):
        if not (directory / "model.json").is_file():
            continue
        results[which] = evaluate(
            load_model(directory, device=device), dataset, attacks=config.eval.attacks, eps=config.attack.eps,
            n=config.eval.n, batch_size=config.eval.batch_size, device=device, seed=config.runtime.seed,
            progress=progress, model_name=run.name if which == "last" else f"{run.name} (best)",
            dataset_name=config.data.name, split="test",
        )
        results[which].save(directory / "eval.json")
    return results.get(config.eval.select, results["last"])


@dataclass
class QuickstartSummary:
    table: Table
    report: Path
    chart: Path
    seconds: float


# The two arms of the quickstart: the same network and objective, with and without BN.
QUICKSTART_ARMS = (
    ("sat-bn", "SAT", "bn", "batch norm"),
    ("nofrost-nf", "NoFrost", "none", "none (NF)"),
)


def _precision(config) -> str:
    """How the training steps ran here: bf16 (runtime.cpu_bf16 on a CPU that has it) or fp32."""
    return "bf16 autocast" if step_uses_bf16(config.runtime, resolve_device(config.runtime.device)) else "fp32"


def quickstart(out_dir: str | Path = "nofrost-quickstart", *, overrides: Sequence[str] = (), quiet: bool = False) -> QuickstartSummary:
    """Train BN+SAT and NoFrost on cifar10-mini, evaluate both, write report.md and a chart."""
    started = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for index, (run_name, method_label, norm, norm_label) in enumerate(QUICKSTART_ARMS, start=1):
        config = load_config("quickstart", overrides=[*overrides, f"model.norm={norm}"])
        run = out / run_name
        if not quiet:
            print(f"== [{index}/{len(QUICKSTART_ARMS)}] {method_label} ({norm_label}): {config.model.name}, "
                  f"{config.optim.epochs} epochs -> {run}", flush=True)
        arm_started = time.perf_counter()
        # Re-running continues (or just re-reports) a finished run instead of refusing.
        result = train(config, run, resume=(run / "checkpoint.pt").exists(), quiet=quiet)
        evaluation = evaluate_run(run, config, progress=progress_enabled(quiet))
        rows.append((method_label, norm_label, evaluation, result.seconds))
        left = len(QUICKSTART_ARMS) - index
        if not quiet and left:
            took = time.perf_counter() - arm_started
            print(f"   {took:.0f} s; about {eta_text(took * left)} left in all", flush=True)

    # One column per evaluated attack (eval.attacks, "pgd" unless overridden), by its display name.
    labels = list(rows[0][2].attacks)
    headers = [rows[0][2].attacks[label].display for label in labels]
    table = Table(["method", "normalization", "clean %", *(f"{h} %" for h in headers), "train s"])
    for method_label, norm_label, evaluation, seconds in rows:
        table.add(method_label, norm_label, percent(evaluation.clean),
                  *(percent(evaluation.attacks[label].accuracy) for label in labels), f"{seconds:.0f}")
    chart = accuracy_chart(
        [f"{m}\n{n}" for m, n, _, _ in rows],
        {"clean": [e.clean for _, _, e, _ in rows],
         **{h: [e.attacks[label].accuracy for _, _, e, _ in rows] for h, label in zip(headers, labels)}},
        out / "quickstart.png",
        title=f"cifar10-mini, eps = {255 * config.attack.eps:.0f}/255, n = {rows[0][2].n}",
    )
    report = out / "report.md"
    report.write_text(
        "# nofrost quickstart\n\n"
        f"{config.model.name} trained {config.optim.epochs} epochs on {config.data.train_n or 'all'} images of "
        f"cifar10-mini (batch {config.optim.batch_size}, {'with' if config.data.augment else 'without'} crops and "
        f"flips, {_precision(config)}) with λ = 0.5 (PGD-{config.attack.steps} in training), evaluated on "
        f"{rows[0][2].n} held-out test images at ε = {255 * config.attack.eps:.0f}/255.\n\n"
        f"{table.markdown()}\n\n![accuracy]({chart.name})\n\n"
        "Short CPU budgets can favour batch norm; see the README for what the paper reports at scale.\n"
    )
    return QuickstartSummary(table=table, report=report, chart=chart, seconds=time.perf_counter() - started)
