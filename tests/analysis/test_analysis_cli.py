"""`nofrost analyze`: both analyses of a BN and an NF model into one folder, and its bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nofrost.cli import main
from nofrost.evaluate import EvaluationResult

ASSETS = Path(__file__).resolve().parents[1] / "assets"
MODELS = [str(ASSETS / "cifar_resnet10_sat_bn"), str(ASSETS / "cifar_resnet10_nofrost_nf")]


def test_analyze_writes_tables_figures_and_per_example_values(tmp_path, capsys):
    out = tmp_path / "analysis"
    argv = ["analyze", *MODELS, "--n", "16", "--metrics", "margin,thickness:steps=2:points=8,smoothness:steps=2",
            "--bn-stats", "--layer", "2", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "M(x) ↑" in printed and "D(x) steps=2 ↓" in printed and "net.stages.0.0.conv1" in printed
    for name in ("analysis.md", "properties.png", "bn_distance.png", "bn_running_stats.png", "bn_stats.json",
                 "bn_stats.npz"):
        assert (out / name).is_file(), name
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = EvaluationResult.load(out / "cifar_resnet10_sat_bn.eval.json")
    assert result.n == 16 and set(result.metrics) == {"margin", "thickness:steps=2:points=8", "smoothness:steps=2"}
    assert len(result.per_example.metrics["margin"]) == 16 and result.attacks == {}
    stats = json.loads((out / "bn_stats.json").read_text())
    assert [s["kind"] for s in stats] == ["bn", "nf"]
    with np.load(out / "bn_stats.npz") as arrays:
        assert "cifar_resnet10_sat_bn/net.stages.0.0.norm1/running_var" in arrays
        assert "cifar_resnet10_nofrost_nf/net.stages.0.0.conv1/adv_mean" in arrays
    markdown = (out / "analysis.md").read_text()
    assert "![histograms](properties.png)" in markdown and "| cifar_resnet10_nofrost_nf |" in markdown


@pytest.mark.parametrize("extra, fragment", [
    ([], "nothing to measure"),
    (["--metrics", "margn"], "unknown metric 'margn'"),
    (["--bn-stats", "--layer", "99"], "layer 99 does not exist"),
    (["--metrics", "margin", "--classes", "x"], "classes: expected indices"),
    (["--metrics", "margin", "--eps", "8"], "8/255"),
])
def test_bad_inputs_are_one_clear_error(extra, fragment, tmp_path, capsys):
    assert main(["analyze", MODELS[0], "--n", "8", "--out", str(tmp_path / "a"), "--quiet", *extra]) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err


def test_a_missing_model_is_one_clear_error(tmp_path, capsys):
    assert main(["analyze", str(tmp_path / "nope"), "--metrics", "margin", "--out", str(tmp_path / "a")]) == 2
    assert "nope" in capsys.readouterr().err
