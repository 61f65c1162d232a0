"""`nofrost reproduce`: every paper target plans at every scale; a tiny real table end to end."""

from __future__ import annotations

import json
import shlex

import pytest

from nofrost.cli import main
from nofrost.reproduce import SCALES, TARGETS, plan


@pytest.mark.parametrize("scale", list(SCALES))
@pytest.mark.parametrize("name", list(TARGETS))
def test_every_target_plans_with_valid_configs_at_every_scale(name, scale, tmp_path):
    planned = plan(name, scale, tmp_path / "out", data_root=None if scale == "cpu" else "/data")
    trains = [s for s in planned.steps if s.argv[0] in ("train", "sweep")]
    assert len(trains) == len(TARGETS[name].arms) and planned.inputs
    for step in trains:
        preset = step.argv[step.argv.index("--preset") + 1]
        if scale == "imagenet":
            assert preset.startswith("imagenet-") and preset.endswith(("-r26", "-r50", "-eps2", "-eps4"))
        else:
            assert preset.startswith("cifar10-")
        assert f"eval.attacks=[{TARGETS[name].attacks}]" in step.argv
        assert ("runtime.cpu_bf16=true" in step.argv) == (scale == "cpu")  # bf16 steps where the CPU has them


def test_the_imagenet_recipe_is_printed_as_torchrun_commands(tmp_path, capsys):
    out = tmp_path / "t7"
    assert main(["reproduce", "table7", "--scale", "imagenet", "--data-root", "/data/imagenet", "--out", str(out),
                 "--print-commands"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 7 and lines[-1].startswith("nofrost report")
    first = shlex.split(lines[0])
    assert first[:5] == ["torchrun", "--nproc_per_node=8", "-m", "nofrost", "train"]
    assert first[first.index("--preset") + 1] == "imagenet-fast-at-r50-eps2"
    assert [shlex.split(line)[shlex.split(line).index("--preset") + 1] for line in lines[:6]] == [
        f"imagenet-{r}-r50-eps{k}" for k in (2, 4) for r in ("fast-at", "free-at", "nofrost")]
    manifest = json.loads((out / "reproduce.json").read_text())  # so that `nofrost report` reads the runs later
    assert manifest["target"] == "table7" and len(manifest["inputs"]) == 6


@pytest.mark.parametrize("argv, fragment", [
    (["reproduce", "table9", "--out", "OUT"], "unknown table or figure 'table9'; available: table1"),
    (["reproduce", "table1", "--scale", "cifar10", "--out", "OUT"], "give --data-root"),
    (["reproduce", "table1"], "give --out DIR"),
    (["reproduce", "table1", "--out", "OUT", "--set", "optim.epoch=2"], "unknown key 'optim.epoch'"),
])
def test_bad_requests_get_one_clear_error(argv, fragment, capsys, tmp_path):
    argv = [a.replace("OUT", str(tmp_path / "out")) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err


def test_list_names_every_target(capsys):
    assert main(["reproduce", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(f"{name} " in out for name in TARGETS) and "Figure 3: robustness to attacks and distribution shift" in out


def test_figures_3_and_4_evaluate_every_run_under_distribution_shift(tmp_path, capsys):
    assert main(["reproduce", "figure3", "--scale", "cpu", "--out", str(tmp_path), "--print-commands"]) == 0
    lines = capsys.readouterr().out.splitlines()
    trains = [line for line in lines if " train " in line]
    assert len(trains) == 6 and all(line.startswith("nofrost train") for line in trains)  # plain at cpu scale
    assert [shlex.split(t)[shlex.split(t).index("--preset") + 1] for t in trains] == [
        f"cifar10-{r}" for r in ("st", "sat", "deepaugment", "tda", "combine", "nofrost-star")]
    shifts = [line for line in lines if line.startswith("nofrost evaluate")]
    assert shifts == [f"nofrost evaluate {tmp_path / arm} --data cifar10-c-gen"
                      for arm in ("st", "sat", "deepaugment", "tda", "combine", "nofrost-star")]
    planned = plan("figure4", "imagenet", tmp_path / "f4", data_root="/data/imagenet",
                   shift_data=["imagenet-c:/data/c", "imagenet-r:/data/r", "imagenet-sketch:/data/s"])
    last = planned.steps[-1]
    assert last.argv[-6:] == ["--data", "imagenet-c:/data/c", "--data", "imagenet-r:/data/r", "--data",
                              "imagenet-sketch:/data/s"] and last.output.name == "eval-imagenet-sketch.json"
    default = plan("figure4", "imagenet", tmp_path / "f4", data_root="/data/imagenet").steps[-1]
    assert default.argv[-2:] == ["--data", "imagenet-c-gen:/data/imagenet"]


@pytest.mark.slow
def test_table3_at_a_tiny_cpu_scale_end_to_end(tiny_overrides, tmp_path, capsys):
    out = tmp_path / "table3"
    argv = ["reproduce", "table3", "--scale", "cpu", "--out", str(out), "--quiet",
            *(a for o in [*tiny_overrides, "eval.attacks=[pgd:steps=2]"] for a in ("--set", o))]
    assert main(argv) == 0
    page = (out / "report.html").read_text()
    assert "Table 3: SAT with BN or IN against NoFrost" in page
    for row in ("SAT w/ BN (sat-bn)", "SAT w/ IN (sat-in)", "NoFrost (nofrost)"):
        assert row in page
    assert "neither replicate nor refute" in page
    # Re-running skips every finished step.
    capsys.readouterr()
    assert main([a for a in argv if a != "--quiet"]) == 0
    assert capsys.readouterr().out.count("done, skipped") == 3
