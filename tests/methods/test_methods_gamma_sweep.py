"""The γ sweep evaluates interpolated MBN models like any model; the trade-off plot draws it."""

from pathlib import Path

import pytest
import torch

from nofrost.data import load_dataset
from nofrost.evaluate import evaluate
from nofrost.evaluate import robustness
from nofrost.evaluate.gamma_sweep import gamma_sweep
from nofrost.evaluate.result import EvaluationResult
from nofrost.evaluate.sweep_result import SweepPoint, SweepReference, SweepResult, SweepRun
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


def test_sweep_points_are_evaluations_of_the_interpolated_model(mbn_run, test_set, no_audit, tmp_path):
    kwargs = dict(attacks=["pgd:steps=2"], eps=8 / 255, n=40, batch_size=40)
    result = gamma_sweep(mbn_run, test_set, [0.0, 0.5, 1.0], nofrost_runs=[NOFROST_ASSET], **kwargs)
    assert result.label == "MBNAT (logits)" and result.grid == {"gamma": ["0", "0.5", "1"]}
    assert [run.point.setting for run in result.runs] == [(("gamma", g),) for g in ("0", "0.5", "1")]
    assert result.labels == ["pgd:steps=2"] and all(run.result.n == 40 for run in result.runs)
    from nofrost import load_model

    model = load_model(mbn_run)
    for gamma, route in ((0.0, "clean"), (1.0, "adv")):
        with mbn_route(model, route):
            single = evaluate(model, test_set, **kwargs)
        point = result.runs[int(gamma == 1.0) * 2].result
        assert point.clean == single.clean and point.accuracies == single.accuracies
    (other,) = result.references
    assert other.label == "cifar_resnet10_nofrost_nf"
    assert other.result.clean == evaluate(load_model(NOFROST_ASSET), test_set, **kwargs).clean
    for entry in [*(run.result for run in result.runs), other.result]:
        assert 0 <= entry.worst_case <= entry.attacks["pgd:steps=2"].accuracy <= entry.clean <= 1
    loaded = SweepResult.load(result.save(tmp_path / "gamma_sweep.json"))
    assert loaded.to_json() == result.to_json()


def test_legacy_gamma_sweep_file_loads_as_a_sweep():
    """A gamma_sweep.json written before γ sweeps were sweeps (accuracies only) still loads."""
    legacy = {
        "kind": "gamma-sweep", "model": "runs/mbnat", "label": "MBNAT (all)", "mode": "all", "seed": 3,
        "dataset": "cifar10-mini", "split": "test", "eps": 8 / 255, "n": 40, "attacks": ["pgd"],
        "points": [{"gamma": g, "clean": 0.7 - 0.3 * g, "attacks": {"pgd": 0.1 + 0.2 * g}, "worst_case": 0.1 + 0.2 * g,
                    "n": 40, "audit_failed": ["deterministic logits"] if g else []} for g in (0.0, 1.0)],
        "nofrost": [{"run": "runs/nf", "label": "nf", "clean": 0.6, "attacks": {"pgd": 0.3}, "worst_case": 0.3,
                     "n": 40, "audit_failed": []}],
    }
    sweep = SweepResult.from_json(legacy)
    assert sweep.label == "MBNAT (all)" and sweep.grid == {"gamma": ["0", "1"]} and sweep.seeds == [3]
    assert sweep.aggregate(((("gamma", "1"),)), "pgd") == (pytest.approx(0.3), 0.0)
    assert sweep.runs[1].result.failed_checks[0].check == "deterministic logits"
    assert sweep.references[0].result.clean == 0.6 and sweep.runs[0].result.eps == 8 / 255


def test_sweep_refuses_models_without_mbn_and_bad_gammas(mbn_run, test_set):
    with pytest.raises(ValueError, match="without mixture-BN layers"):
        gamma_sweep(NOFROST_ASSET, test_set, [0.5], n=10)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        gamma_sweep(mbn_run, test_set, [0.5, 1.5], n=10)
    with pytest.raises(ValueError, match="mode must be one of"):
        gamma_sweep(mbn_run, test_set, [0.5], n=10, mode="average")


def _sweep(label: str, shift: float) -> SweepResult:
    def result(clean, pgd, apgd):
        return EvaluationResult.from_json({"clean": clean, "attacks": {"pgd": pgd, "apgd-ce": apgd},
                                           "worst_case": min(pgd, apgd), "n": 100})
    runs = [SweepRun(SweepPoint((("gamma", f"{g:g}"),), 0), result(0.7 - 0.3 * g + shift, 0.05 + 0.2 * g, 0.02 + 0.1 * g))
            for g in (0.0, 0.5, 1.0)]
    return SweepResult({"gamma": ["0", "0.5", "1"]}, [0], runs, label=label,
                       references=[SweepReference("NoFrost", "runs/nofrost", result(0.7, 0.22, 0.12))])


def test_tradeoff_plot_draws_curves_and_points(tmp_path):
    path = tradeoff_plot(_sweep("MBNAT (logits)", 0.0), tmp_path / "fig.png", title="cifar10-mini")
    assert path.is_file() and path.read_bytes()[:4] == b"\x89PNG"
    both = tradeoff_plot([_sweep("MBNAT (logits)", 0.0), _sweep("MBNAT (all)", -0.05)], tmp_path / "fig5.png",
                         attacks=["pgd", "worst-case"])
    assert both.stat().st_size > 10_000
    with pytest.raises(ValueError, match="not in the sweep"):
        tradeoff_plot(_sweep("x", 0), tmp_path / "bad.png", attacks=["square"])
