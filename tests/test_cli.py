"""Command line: train → evaluate → report on real data, JSON contract, clear errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nofrost.cli import main

EVAL_KEYS = {"model", "dataset", "split", "n", "eps", "clean", "attacks", "worst_case", "audit", "seconds"}


def _sets(overrides):
    return [arg for o in overrides for arg in ("--set", o)]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_overrides):
    run = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", "--preset", "quickstart", *_sets(tiny_overrides), "--out", str(run), "--quiet"]) == 0
    return run


def test_train_writes_an_evaluated_run(trained_run):
    result = json.loads((trained_run / "eval.json").read_text())
    assert EVAL_KEYS <= set(result)
    assert result["n"] == 64 and result["eps"] == pytest.approx(8 / 255)
    assert set(result["attacks"]) == {"pgd"}


def test_evaluate_prints_table_and_writes_json(trained_run, tmp_path, capsys):
    out = tmp_path / "e.json"
    code = main(["evaluate", str(trained_run), "--data", "cifar10-mini", "--n", "40", "--attacks", "clean,pgd,pgd:steps=5",
                 "--eps", "8/255", "--json", str(out), "--quiet", "--device", "cpu"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "worst-case" in printed and "audit:" in printed
    result = json.loads(out.read_text())
    assert EVAL_KEYS <= set(result)
    assert result["dataset"] == "cifar10-mini" and result["split"] == "test" and result["n"] == 40
    assert set(result["attacks"]) == {"pgd", "pgd:steps=5"}
    assert result["attack_params"]["pgd"]["steps"] == 20
    for accuracy in result["attacks"].values():
        assert 0 <= accuracy <= result["clean"] <= 1
    assert result["worst_case"] <= min(result["attacks"].values())
    assert all({"check", "passed", "detail"} == set(a) for a in result["audit"])


def test_report_tabulates_runs(trained_run, tmp_path):
    out = tmp_path / "report.html"
    assert main(["report", str(trained_run), "-o", str(out)]) == 0
    text = out.read_text()
    assert "<table>" in text and "sat" in text and "cifar_resnet10" in text
    assert out.with_suffix(".png").stat().st_size > 1000


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["evaluate", "MISSING", "--data", "cifar10-mini"], "MISSING"),
        (["evaluate", "RUN", "--data", "cifar10-mini", "--eps", "8"], "did you mean 8/255"),
        (["evaluate", "RUN", "--data", "cifar10-mini", "--attacks", "pgd,nope"], "unknown attack 'nope'"),
        (["evaluate", "RUN", "--data", "nosuchdata"], "nosuchdata"),
        (["train", "--preset", "quickstart", "--set", "optim.epoch=2", "--out", "OUT"], "unknown key 'optim.epoch'"),
        (["train", "--out", "OUT"], "--preset"),
        (["train", "--out", "OUT", "--resume"], "config.yaml"),
        (["evaluate", "RUN", "--data", "cifar10-mini", "--attacks", "pgd:stepz=5"],
         "attack 'pgd' has no option 'stepz' (in 'pgd:stepz=5'); its options: steps, step_size"),
        (["evaluate", "RUN", "--data", "cifar10-mini", "--device", "tpu"], "unknown device 'tpu'; use auto, cpu"),
        (["train", "--preset", "quickstart", "--set", "runtime.bn_group_size=1", "--out", "OUT"],
         "runtime.bn_group_size: must be an integer >= 2"),
        (["train", "--preset", "quickstart", "--set", "eval.select=first", "--out", "OUT"], "eval.select: must be"),
        (["train", "--preset", "quickstart", "--set", "optim.weight_decay_on=gains", "--out", "OUT"],
         "optim.weight_decay_on: must be 'all'"),
    ],
)
def test_errors_are_one_clear_line(argv, fragment, trained_run, tmp_path, capsys):
    argv = [str(trained_run) if a == "RUN" else str(tmp_path / "x") if a == "OUT" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"nofrost {argv[0]}: error:") and fragment in err


def test_console_entry_points():
    script = Path(sys.executable).parent / "nofrost"  # installed by pyproject's [project.scripts]
    for command in ([sys.executable, "-m", "nofrost", "--help"], [str(script), "--help"]):
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        assert "quickstart" in done.stdout and "evaluate" in done.stdout
    listing = subprocess.run([sys.executable, "-m", "nofrost", "list"], capture_output=True, text=True, check=True).stdout
    assert "nf_resnet50" in listing and "pgd" in listing and "sat" in listing and "cifar10-mini" in listing
