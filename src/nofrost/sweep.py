"""Sweeps: train and evaluate a grid of config settings over seeds, then aggregate.

``nofrost sweep --preset cifar10-sat --grid method.lam=0,0.25,0.5,0.75,1 --seeds 0,1,2 --out DIR``
trains one run per (setting, seed) into ``DIR/<setting>/seed<k>``, one after another, each
evaluated with its config's eval section (as ``nofrost train`` does). A finished run (its
``eval.json`` written) is skipped, an interrupted one (a ``checkpoint.pt`` but no result)
resumed, so re-running the same command continues the sweep. ``--print-commands`` prints the
``torchrun`` command of every run instead, for a cluster.

The aggregate (:class:`SweepResult`) is the mean ± standard deviation over seeds of each
accuracy per setting (the paper's Table 4 is the spread over three seeds), and the
accuracy–robustness trade-off along the swept values (the paper's Figures 2 and 5).
"""

from __future__ import annotations

import itertools
import shlex
import statistics
import time
from pathlib import Path
from typing import Sequence

from nofrost.config import Config, load_config
from nofrost.evaluate.result import EvaluationResult
from nofrost.evaluate.sweep_result import SweepPoint, SweepResult, SweepRun

__all__ = ["SweepPoint", "SweepResult", "parse_grid", "plan_sweep", "run_sweep", "sweep_commands"]

RESULT_FILE = "sweep.json"


def parse_grid(items: Sequence[str]) -> dict[str, list[str]]:
    """``["method.lam=0,0.5,1"]`` → ``{"method.lam": ["0", "0.5", "1"]}`` (values as written)."""
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not key or "." not in key:
            raise ValueError(f"--grid {item!r}: expected section.key=value1,value2,..., e.g. method.lam=0,0.5,1")
        if key in grid:
            raise ValueError(f"--grid {key} is given twice; list all its values in one --grid")
        listed = [v.strip() for v in values.split(",")]
        if any(not v for v in listed) or len(set(listed)) < len(listed):
            raise ValueError(f"--grid {item!r}: give distinct, non-empty values separated by commas")
        grid[key] = listed
    return grid


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in str(text).split(",")]
    except ValueError:
        raise ValueError(f"--seeds {text!r}: expected integers separated by commas, e.g. 0,1,2") from None
    if len(set(seeds)) < len(seeds) or any(s < 0 for s in seeds):
        raise ValueError(f"--seeds {text!r}: give distinct non-negative integers")
    return seeds


def plan_sweep(
    grid: dict[str, list[str]], seeds: Sequence[int], *, preset: str | None = None,
    config_file: str | Path | None = None, overrides: Sequence[str] = (),
) -> list[tuple[SweepPoint, Config]]:
    """Every (setting, seed) with its config, validated up front (a bad value fails before any
    run starts). Settings vary slowest in the order the grid keys were given; seeds fastest."""
    if "runtime.seed" in grid:
        raise ValueError("sweep seeds with --seeds, not --grid runtime.seed=...")
    points = [SweepPoint(tuple(zip(grid, values)), seed)
              for values in itertools.product(*grid.values()) for seed in seeds]  # fmt: skip
    if not points:
        raise ValueError("the sweep is empty: give at least one seed")
    return [(p, load_config(preset, config_file, [*overrides, *p.overrides])) for p in points]


def sweep_commands(planned: list[tuple[SweepPoint, Config]], out: str | Path, *, preset: str | None,
                   config_file: str | Path | None, overrides: Sequence[str], nproc: int = 1) -> list[str]:
    """The ``torchrun`` command line of each run (``--resume auto``: safe to re-send)."""
    base = ["torchrun", f"--nproc_per_node={nproc}", "-m", "nofrost", "train"]
    if preset:
        base += ["--preset", preset]
    if config_file:
        base += ["--config", str(config_file)]
    commands = []
    for point, _ in planned:
        sets = [a for o in [*overrides, *point.overrides] for a in ("--set", o)]
        argv = [*base, *sets, "--out", str(point.run_dir(Path(out))), "--resume", "auto"]
        commands.append(shlex.join(argv))
    return commands


def run_sweep(
    planned: list[tuple[SweepPoint, Config]], out: str | Path, grid: dict[str, list[str]], seeds: Sequence[int],
    *, quiet: bool = False,
) -> SweepResult:
    """Train and evaluate every planned run in turn (skipping finished ones, resuming
    interrupted ones); write ``out/sweep.json`` after each run and return the aggregate."""
    from nofrost.console import eta_text, progress_enabled
    from nofrost.report.sources import load_run
    from nofrost.train import train
    from nofrost.workflows import evaluate_run

    out = Path(out)
    sweep = SweepResult(dict(grid), list(seeds))
    finished = [(point.run_dir(out) / "eval.json").is_file() and (point.run_dir(out) / "model.json").is_file()
                for point, _ in planned]
    spent: list[float] = []  # wall time of each run this invocation trained
    for index, ((point, config), done) in enumerate(zip(planned, finished), start=1):
        run = point.run_dir(out)
        if not quiet:
            state = "done, skipped" if done else ("resuming" if (run / "checkpoint.pt").exists() else "training")
            print(f"== [{index}/{len(planned)}] {point.label}, seed {point.seed}: {state} -> {run}", flush=True)
        if done:
            result, seconds = EvaluationResult.load(run / "eval.json"), load_run(run).train_seconds
        else:
            started = time.perf_counter()
            trained = train(config, run, resume=(run / "checkpoint.pt").exists(), quiet=quiet)
            result, seconds = evaluate_run(run, config, progress=progress_enabled(quiet)), trained.seconds
            spent.append(time.perf_counter() - started)
            left = sum(not d for d in finished[index:])
            if not quiet and left:
                print(f"   {spent[-1]:.0f} s; {left} run(s) to go, about {eta_text(statistics.fmean(spent) * left)} "
                      f"left", flush=True)
        sweep.runs.append(SweepRun(point, result, seconds))
        sweep.save(out / RESULT_FILE)
    return sweep
