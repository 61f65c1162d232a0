"""`nofrost sweep`: a grid over seeds, trained and evaluated, skipped when done, aggregated."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from nofrost.cli import main
from nofrost.evaluate import EvaluationResult
from nofrost.console import eta_text
from nofrost.sweep import SweepResult, parse_grid, parse_seeds, plan_sweep


def _sets(overrides):
    return [a for o in overrides for a in ("--set", o)]


def test_sweep_trains_every_run_aggregates_and_skips_finished_runs(tiny_overrides, tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = ["sweep", "--preset", "quickstart", *_sets([*tiny_overrides, "optim.epochs=1"]),
            "--grid", "method.lam=0,1", "--seeds", "0,1", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    runs = {(lam, seed): out / f"method.lam={lam}" / f"seed{seed}" for lam in (0, 1) for seed in (0, 1)}
    assert all((run / "eval.json").is_file() for run in runs.values())
    sweep = SweepResult.from_json(json.loads((out / "sweep.json").read_text()))
    assert len(sweep.runs) == 4 and sweep.labels == ["pgd"]
    # mean ± std over seeds, by hand from the runs' own eval.json files
    for lam in (0, 1):
        clean = [EvaluationResult.load(runs[lam, s] / "eval.json").clean for s in (0, 1)]
        setting = (("method.lam", str(lam)),)
        assert sweep.aggregate(setting, "clean") == pytest.approx((statistics.fmean(clean), statistics.stdev(clean)))
        assert f"{100 * statistics.fmean(clean):.2f} ± {100 * statistics.stdev(clean):.2f}" in printed
    assert (out / "tradeoff.png").read_bytes()[:4] == b"\x89PNG" and "± " in (out / "sweep.md").read_text()
    # Seeds differ: the two seeds of a setting are different runs.
    assert (runs[1, 0] / "model.safetensors").read_bytes() != (runs[1, 1] / "model.safetensors").read_bytes()

    # Again: every run is done, nothing is retrained.
    stamps = {k: (run / "model.safetensors").stat().st_mtime_ns for k, run in runs.items()}
    assert main([a for a in argv if a != "--quiet"]) == 0
    again = capsys.readouterr().out
    assert again.count("done, skipped") == 4 and "to go" not in again  # nothing trained, no estimate
    assert stamps == {k: (run / "model.safetensors").stat().st_mtime_ns for k, run in runs.items()}


def test_print_commands_lists_one_torchrun_per_run(capsys):
    assert main(["sweep", "--preset", "quickstart", "--grid", "method.lam=0,0.5", "--seeds", "0,1,2",
                 "--out", "sweeps/lam", "--print-commands", "--nproc", "8"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 6 and all(line.startswith("torchrun --nproc_per_node=8 -m nofrost train") for line in lines)
    assert "--set method.lam=0.5 --set runtime.seed=2 --out sweeps/lam/method.lam=0.5/seed2 --resume auto" in lines[-1]


@pytest.mark.parametrize("argv, fragment", [
    (["--grid", "lam=0,1"], "expected section.key=value1,value2"),
    (["--grid", "method.lam=0,,1"], "distinct, non-empty values"),
    (["--grid", "method.lam=0", "--grid", "method.lam=1"], "given twice"),
    (["--grid", "method.lam=abc"], "method.lam"),
    (["--seeds", "0,x"], "expected integers"),
    (["--grid", "runtime.seed=0,1"], "sweep seeds with --seeds"),
])
def test_bad_sweeps_fail_before_any_run(argv, fragment, tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["sweep", "--preset", "quickstart", *argv, "--out", str(out), "--quiet"]) == 2
    assert fragment in capsys.readouterr().err
    assert not out.exists()


def test_plan_is_the_product_of_settings_and_seeds():
    planned = plan_sweep(parse_grid(["method.lam=0,1", "attack.steps=1,2"]), parse_seeds("3,4"), preset="quickstart")
    labels = [(p.label, p.seed) for p, _ in planned]
    assert labels[:3] == [("method.lam=0,attack.steps=1", 3), ("method.lam=0,attack.steps=1", 4),
                          ("method.lam=0,attack.steps=2", 3)] and len(labels) == 8
    assert planned[-1][1].method.lam == 1 and planned[-1][1].attack.steps == 2 and planned[-1][1].runtime.seed == 4
    assert Path(planned[0][0].run_dir(Path("o"))) == Path("o/method.lam=0,attack.steps=1/seed3")


def test_eta_text_reads_naturally():
    assert [eta_text(s) for s in (42, 89.4, 420, 5399, 9000)] == ["42 s", "89 s", "7 min", "90 min", "2.5 h"]
