"""The γ sweep evaluates interpolated MBN models like any model; the trade-off plot draws it."""

import json
from pathlib import Path

import pytest
import torch

from nofrost.data import load_dataset
from nofrost.evaluate import evaluate
from nofrost.evaluate import robustness
from nofrost.evaluate.gamma_sweep import gamma_sweep
from nofrost.models import create_model, save_model
from nofrost.models.mbn import mbn_layers, mbn_route
from nofrost.report.tradeoff import tradeoff_plot

NOFROST_ASSET = Path(__file__).resolve().parents[1] / "assets" / "cifar_resnet10_nofrost_nf"


@pytest.fixture
def no_audit(monkeypatch):
    """The self-audit is tested elsewhere; skipping it keeps these tests fast."""
    monkeypatch.setattr(robustness, "run_audit", lambda model, batch, result: [])


@pytest.fixture(scope="module")
def mbn_run(tmp_path_factory):
    torch.manual_seed(0)
    model = create_model("cifar_resnet10", 10, norm="mbn", width=8)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # two clearly different paths
        for m in mbn_layers(model):
            m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=g))
            m.running_mean_a.copy_(0.3 * torch.randn(m.num_features, generator=g))
    path = tmp_path_factory.mktemp("mbn") / "run"
    save_model(model, path)
    return path


@pytest.fixture(scope="module")
def test_set():
    return load_dataset("cifar10-mini", "test")


def test_sweep_points_are_evaluations_of_the_interpolated_model(mbn_run, test_set, no_audit):
    kwargs = dict(attacks=["pgd:steps=2"], eps=8 / 255, n=40, batch_size=40)
    result = gamma_sweep(mbn_run, test_set, [0.0, 0.5, 1.0], nofrost_runs=[NOFROST_ASSET], **kwargs)
    assert result["kind"] == "gamma-sweep" and result["label"] == "MBNAT (logits)"
    assert [pt["gamma"] for pt in result["points"]] == [0.0, 0.5, 1.0]
    assert result["attacks"] == ["pgd:steps=2"] and result["n"] == 40
    from nofrost import load_model

    model = load_model(mbn_run)
    for gamma, route in ((0.0, "clean"), (1.0, "adv")):
        with mbn_route(model, route):
            single = evaluate(model, test_set, **kwargs)
        point = result["points"][int(gamma == 1.0) * 2]
        assert point["clean"] == single["clean"] and point["attacks"] == single["attacks"]
    (other,) = result["nofrost"]
    assert other["label"] == "cifar_resnet10_nofrost_nf"
    assert other["clean"] == evaluate(load_model(NOFROST_ASSET), test_set, **kwargs)["clean"]
    for entry in [*result["points"], other]:
        assert 0 <= entry["worst_case"] <= entry["attacks"]["pgd:steps=2"] <= entry["clean"] <= 1
    json.dumps(result)  # JSON-ready


def test_sweep_refuses_models_without_mbn_and_bad_gammas(mbn_run, test_set):
    with pytest.raises(ValueError, match="without mixture-BN layers"):
        gamma_sweep(NOFROST_ASSET, test_set, [0.5], n=10)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        gamma_sweep(mbn_run, test_set, [0.5, 1.5], n=10)
    with pytest.raises(ValueError, match="mode must be one of"):
        gamma_sweep(mbn_run, test_set, [0.5], n=10, mode="average")


def test_tradeoff_plot_draws_curves_and_points(tmp_path):
    def sweep(label, shift):
        return {
            "label": label, "attacks": ["pgd", "apgd-ce"],
            "points": [{"gamma": g, "clean": 0.7 - 0.3 * g + shift, "attacks": {"pgd": 0.05 + 0.2 * g, "apgd-ce": 0.02 + 0.1 * g},
                        "worst_case": 0.02 + 0.1 * g} for g in (0.0, 0.5, 1.0)],
            "nofrost": [{"run": "runs/nofrost", "label": "NoFrost", "clean": 0.7, "attacks": {"pgd": 0.22, "apgd-ce": 0.12},
                         "worst_case": 0.12}],
        }

    path = tradeoff_plot(sweep("MBNAT (logits)", 0.0), tmp_path / "fig.png", title="cifar10-mini")
    assert path.is_file() and path.read_bytes()[:4] == b"\x89PNG"
    both = tradeoff_plot([sweep("MBNAT (logits)", 0.0), sweep("MBNAT (all)", -0.05)], tmp_path / "fig5.png",
                         attacks=["pgd", "worst-case"])
    assert both.stat().st_size > 10_000
    with pytest.raises(ValueError, match="not in the result"):
        tradeoff_plot(sweep("x", 0), tmp_path / "bad.png", attacks=["square"])
