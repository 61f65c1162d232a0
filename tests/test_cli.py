"""Command line: train → evaluate → report on real data, JSON contract, clear errors."""

import json
import shutil
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


def test_evaluate_under_l2(trained_run, tmp_path, capsys):
    out = tmp_path / "l2.json"
    argv = ["evaluate", str(trained_run), "--data", "cifar10-mini", "--n", "20", "--norm", "l2",
            "--attacks", "pgd:steps=3,autoattack:version=fast:steps=3", "--json", str(out), "--quiet"]
    assert main(argv) == 0
    assert "ℓ2 ε = 0.5" in capsys.readouterr().out  # the ℓ2 default radius
    result = json.loads(out.read_text())
    assert result["norm"] == "l2" and result["eps"] == 0.5
    assert result["worst_case"] <= min(result["attacks"].values()) <= result["clean"]
    assert any("noise of ℓ2 norm ε" in check["detail"] for check in result["audit"])  # the audit ran in ℓ2 too


def test_report_tabulates_runs(trained_run, tmp_path, capsys):
    out = tmp_path / "report.html"
    assert main(["report", str(trained_run), "-o", str(out)]) == 0
    assert f"wrote {out}, {out.with_suffix('.md')}" in capsys.readouterr().out
    text = out.read_text()
    assert "<table>" in text and "SAT w/ BN" in text and "cifar_resnet10" in text
    assert "data:image/png;base64," in text  # figures embedded in the page


def test_report_shows_model_properties_of_runs_evaluated_with_metrics(trained_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    argv = ["evaluate", str(run), "--data", "cifar10-mini", "--n", "24", "--attacks", "pgd:steps=2",
            "--metrics", "margin,smoothness:steps=2", "--quiet"]
    assert main(argv) == 0
    assert "M(x) ↑" in capsys.readouterr().out
    assert (run / "eval.json").is_file() and (run / "eval.npz").is_file()  # per-example values beside it
    out = tmp_path / "report.md"
    assert main(["report", str(run), "-o", str(out)]) == 0
    text = out.read_text()
    assert "## Model properties" in text and "| SAT w/ BN (run) | 24 |" in text and "PGD-2" in text
    assert (tmp_path / "report_figures" / "properties.png").read_bytes()[:4] == b"\x89PNG"


TRAIN = ["train", "--preset", "quickstart", "--out", "OUT"]


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["evaluate", "MISSING", "--data", "cifar10-mini"], "MISSING"),
        (["evaluate", "RUN", "--data", "cifar10-mini", "--eps", "8"], "did you mean 8/255"),
        (["evaluate", "RUN", "--data", "cifar10-mini", "--eps", "abc"], "cannot read 'abc' as a perturbation size"),
        (["evaluate", "RUN", "--data", "cifar10-mini", "--attacks", "pgd,nope"], "unknown attack 'nope'"),
        (["evaluate", "RUN", "--data", "nosuchdata"], "nosuchdata"),
        (["evaluate", "RUN", "--data", "cifar10-mini", "--attacks", "pgd:stepz=5"],
         "attack 'pgd' has no option 'stepz' (in 'pgd:stepz=5'); its options: steps, step_size"),
        (["evaluate", "RUN", "--data", "cifar10-mini", "--attacks", "pgd:steps=0"], "steps must be a positive integer"),
        (["evaluate", "RUN", "--data", "cifar10-mini", "--metrics", "margn"], "unknown metric 'margn'; available: margin"),
        (["evaluate", "RUN", "--data", "cifar10-mini", "--metrics", "thickness:betta=1"], "metric 'thickness' has no option 'betta'"),
        (["evaluate", "RUN", "--data", "cifar10-mini", "--classes", "a-b"], "classes: expected indices and ranges"),
        (["evaluate", "RUN", "--data", "cifar10-mini", "--classes", "5-2"], "is not a range of class indices"),
        (["evaluate", "RUN", "--data", "cifar10-mini", "--classes", "10-12"], "classes [10, 11, 12] have no examples"),
        (["evaluate", "RUN", "--data", "cifar10-mini", "--attacks", "pgd:steps"], "expected key=value"),
        (["evaluate", "RUN", "--data", "cifar10-mini", "--attacks", "autoattack:version=nope"],
         "version must be one of standard, fast, rand, custom"),
        (["evaluate", "RUN", "--data", "cifar10-mini", "--device", "tpu"], "unknown device 'tpu'; use auto, cpu"),
        (["evaluate", "RUN", "--data", "cifar10-mini", "--norm", "l3"], "norm must be one of linf, l2, got 'l3'"),
        (["evaluate", "RUN", "--data", "cifar10-mini", "--norm", "l2", "--attacks", "rays"],
         "attack 'rays' is defined for the linf threat model only, not l2"),
        (["evaluate", "RUN", "--data", "cifar10-mini", "--norm", "l2", "--attacks", "paper"],
         "the paper suite is ℓ∞"),
        (["evaluate", "RUN", "--data", "cifar10-mini", "--norm", "l2", "--eps", "128"],
         "larger than the diameter √3072 = 55.43 of the image box [0, 1]^3072; did you mean 128/255"),
        (["evaluate", "RUN", "--data", "cifar10-mini", "--attacks", "pgd:norm=l2"],
         "norm is set for every attack of the evaluation (--norm)"),
        (["evaluate", "RUN", "--data", "cifar10-mini", "--device", "cuda:7"], "cuda:7"),
        (["evaluate", "RUN", "--data", "cifar10-mini", "--split", "val"], "unknown split 'val'"),
        (["evaluate", "RUN", "--data", "cifar10"], "dataset 'cifar10' needs root="),
        (["evaluate", "RUN", "--data", "cifar10:MISSING"], "does not exist"),
        (["evaluate", "GARBAGE", "--data", "cifar10-mini"], "GARBAGE"),
        (["evaluate", "FULL", "--data", "cifar10-mini"], "directory without a saved model"),
        (["report", "FULL", "-o", "OUT.md"], "is not something `nofrost report` reads"),
        (["gamma-sweep", "RUN", "--data", "cifar10-mini"], "without mixture-BN layers"),
        (["train", "--out", "OUT"], "--preset"),
        (["train", "--out", "OUT", "--resume"], "config.yaml"),
        (["train", "--preset", "nope", "--out", "OUT"], "unknown preset 'nope'"),
        (["train", "--preset", "quickstart", "--out", "FULL"], "not a nofrost run; choose a new or empty folder"),
        (["train", "--preset", "quickstart", "--out", "AFILE"], "is a file, not a folder"),
        (["train", "--preset", "quickstart", "--config", "MISSING", "--out", "OUT"], "does not exist"),
        (["train", "--preset", "quickstart", "--config", "BADYAML", "--out", "OUT"], "is not valid YAML"),
        ([*TRAIN, "--set", "optim.epoch=2"], "unknown key 'optim.epoch'"),
        ([*TRAIN, "--set", "optim.epochs=abc"], "optim.epochs: must be an integer, got 'abc'"),
        ([*TRAIN, "--set", "optim.epochs"], "expected section.key=value"),
        ([*TRAIN, "--set", "attack.eps=8"], "did you mean 8/255"),
        ([*TRAIN, "--set", "method.name=nope"], "unknown training method 'nope'"),
        ([*TRAIN, "--set", "method.name=mbnat"], "needs model.norm=mbn"),
        ([*TRAIN, "--set", "method.name=trades", "--set", "method.tau=2"], "does not use method.tau"),
        ([*TRAIN, "--set", "model.name=nope"], "unknown model 'nope'"),
        ([*TRAIN, "--set", "model.norm=xn"], "unknown norm 'xn'"),
        ([*TRAIN, "--set", "data.name=nope"], "unknown dataset 'nope'"),
        ([*TRAIN, "--set", "runtime.device=tpu"], "runtime.device: must be 'auto', 'cpu' or 'cuda[:N]'"),
        ([*TRAIN, "--set", "runtime.bn_group_size=1"], "runtime.bn_group_size: must be an integer >= 2"),
        ([*TRAIN, "--set", "model.norm=none", "--set", "runtime.bn_group_size=32"], "no plain BatchNorm2d layers"),
        ([*TRAIN, "--set", "eval.select=first"], "eval.select: must be"),
        ([*TRAIN, "--set", "optim.weight_decay_on=gains"], "optim.weight_decay_on: must be 'all'"),
    ],
)
def test_errors_are_one_clear_line(argv, fragment, trained_run, tmp_path, capsys):
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("a user's own file\n")
    (tmp_path / "afile").write_text("x\n")
    (tmp_path / "garbage.pt").write_bytes(bytes(range(256)) * 8)
    (tmp_path / "bad.yaml").write_text("a: [1\n")
    names = {"RUN": str(trained_run), "OUT": str(tmp_path / "x"), "OUT.md": str(tmp_path / "r.md"),
             "FULL": str(full), "AFILE": str(tmp_path / "afile"), "GARBAGE": str(tmp_path / "garbage.pt"),
             "BADYAML": str(tmp_path / "bad.yaml"), "MISSING": str(tmp_path / "missing")}
    argv = [names.get(a, a.replace("MISSING", names["MISSING"])) for a in argv]
    fragment = fragment.replace("GARBAGE", names["GARBAGE"]).replace("MISSING", names["MISSING"])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"nofrost {argv[0]}: error:") and fragment in err, err
    assert "Traceback" not in err
    assert (full / "notes.txt").read_text() == "a user's own file\n"  # never touched


def test_debug_shows_the_traceback(trained_run):
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        main(["--debug", "evaluate", str(trained_run), "--data", "cifar10-mini", "--device", "tpu"])


def test_console_entry_points():
    script = Path(sys.executable).parent / "nofrost"  # installed by pyproject's [project.scripts]
    for command in ([sys.executable, "-m", "nofrost", "--help"], [str(script), "--help"]):
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        assert "quickstart" in done.stdout and "evaluate" in done.stdout
    listing = subprocess.run([sys.executable, "-m", "nofrost", "list"], capture_output=True, text=True, check=True).stdout
    assert "nf_resnet50" in listing and "pgd" in listing and "sat" in listing and "cifar10-mini" in listing
    lines = {line.split()[0]: line.split()[1:] for line in listing.splitlines() if line.startswith("  ")}
    assert lines["pgd"] == ["white-box", "linf,", "l2", "bf16"] and lines["rays"] == ["black-box", "linf", "fp32"]
    assert lines["square"][-1] == "fp32" and lines["margin"][:2] == ["Decision", "margin"]


def test_a_closed_pipe_ends_the_output_quietly():
    """`nofrost list | head -1`: the reader is gone before nofrost writes; no traceback."""
    child = subprocess.Popen([sys.executable, "-m", "nofrost", "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    child.stdout.close()
    err = child.stderr.read().decode()
    assert child.wait() == 0 and "Traceback" not in err, err


def test_resume_auto_starts_fresh_continues_after_a_crash_and_refuses_another_config(tiny_overrides, tmp_path,
                                                                                    monkeypatch):
    """The same command line, re-run after a crash (as torchrun --max-restarts does), ends in the
    weights of an uninterrupted run; with another config it is refused and nothing is touched."""
    import torch
    from safetensors.torch import load_file

    import nofrost.train.loop as loop_module

    def argv(out, *extra):
        return ["train", "--preset", "quickstart", *_sets(tiny_overrides), *extra, "--out", str(out),
                "--resume", "auto", "--no-eval", "--quiet"]

    assert main(argv(tmp_path / "full")) == 0  # no checkpoint yet: a fresh run
    real_write = loop_module._write_metrics

    def crash_after_first_epoch(path, history):
        real_write(path, history)
        if len(history) == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(loop_module, "_write_metrics", crash_after_first_epoch)
    assert main(argv(tmp_path / "cut")) == 130  # interrupted after epoch 1's checkpoint
    monkeypatch.setattr(loop_module, "_write_metrics", real_write)
    assert main(argv(tmp_path / "cut")) == 0  # the same command continues from epoch 1
    full, cut = load_file(tmp_path / "full" / "model.safetensors"), load_file(tmp_path / "cut" / "model.safetensors")
    assert full.keys() == cut.keys() and all(torch.equal(full[k], cut[k]) for k in full)
    metrics = [json.loads(line) for line in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2]

    before = (tmp_path / "cut" / "checkpoint.pt").read_bytes()
    assert main(argv(tmp_path / "cut", "--set", "optim.lr=0.05")) == 2
    assert (tmp_path / "cut" / "checkpoint.pt").read_bytes() == before
    assert main(["train", "--out", str(tmp_path / "x"), "--resume", "later"]) == 2


def test_report_names_the_deepaugment_variant_a_run_used(tmp_path):
    from nofrost.report.sources import Run

    def label(method):
        return Run(tmp_path, {"method": method, "model": {"name": "cifar_resnet10", "norm": "none"}}, [], None, None).label

    assert label({"name": "nofrost-star", "deepaugment": "noise2net"}) == "NoFrost* (DeepAugment: noise2net)"
    assert label({"name": "sat", "lam": 0.5}) == "NoFrost"  # runs from before the field
