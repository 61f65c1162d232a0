"""ε curves (the paper's Figure 7): one evaluation per ε on the same examples, typed, plotted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import nofrost
from nofrost.cli import main
from nofrost.data import load_dataset
from nofrost.evaluate import evaluate
from nofrost.evaluate.eps_curve import EpsCurve, eps_curve

ASSET = Path(__file__).resolve().parents[1] / "assets" / "cifar_resnet10_sat_bn"
KWARGS = dict(attacks="pgd:steps=3", n=24, seed=3)


def test_each_point_is_the_evaluation_at_that_eps():
    model, data = nofrost.load_model(ASSET), load_dataset("cifar10-mini", "test")
    curve = eps_curve(model, data, [16 / 255, 4 / 255, 8 / 255, 8 / 255], **KWARGS)
    assert curve.eps == [4 / 255, 8 / 255, 16 / 255]  # sorted, once each
    for result in curve.results:
        alone = evaluate(model, data, eps=result.eps, **KWARGS)
        assert alone.accuracies == result.accuracies and alone.clean == result.clean
    pgd = curve.curve("pgd:steps=3")
    assert pgd[0] >= pgd[-1] and curve.curve("worst-case") == [r.worst_case for r in curve.results]
    again = EpsCurve.from_json(json.loads(json.dumps(curve.to_json())))
    assert again.eps == curve.eps and again.curve("pgd:steps=3") == pgd
    with pytest.raises(ValueError, match="no attack 'pgd'"):
        curve.curve("pgd")
    with pytest.raises(ValueError, match="not a nofrost ε curve"):
        EpsCurve.from_json({"clean": 0.5, "attacks": {}})


def test_cli_takes_a_list_of_eps(tmp_path, capsys):
    out = tmp_path / "curve.json"
    argv = ["evaluate", str(ASSET), "--data", "cifar10-mini", "--n", "16", "--attacks", "pgd:steps=2",
            "--eps", "8/255,12/255", "--json", str(out), "--quiet"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "ε = 8/255" in printed and "ε = 12/255" in printed and "PGD-2" in printed
    assert json.loads(out.read_text())["kind"] == "eps-curve"
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    assert main(argv[:-3] + ["--eps", "8/255,abc", "--quiet"]) == 2
    assert "cannot read 'abc'" in capsys.readouterr().err
