"""BN statistics of clean and adversarial images (Figure 1 and beyond), checked against forward
hooks written here, and the distance by hand."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import nofrost
from nofrost.analysis import bn_layers, channel_distance, clean_vs_adversarial, measured_positions, running_stats
from nofrost.data import load_dataset, stratified_subset
from nofrost.data.loader import derive_seed
from nofrost.evaluate.metrics import MetricBatch

ASSETS = Path(__file__).resolve().parents[1] / "assets"
N = 24


@pytest.fixture(scope="module")
def data():
    return load_dataset("cifar10-mini", "test")


def hooked_moments(model, modules, images):
    """Per-channel mean and biased variance of each module's input, by hooks of this test."""
    seen = {}
    handles = [m.register_forward_pre_hook(lambda mod, inp, name=name: seen.__setitem__(name, inp[0].detach()))
               for name, m in modules]
    try:
        with torch.no_grad():
            model(images)
    finally:
        for h in handles:
            h.remove()
    return {name: torch.var_mean(x, dim=(0, 2, 3), unbiased=False)[::-1] for name, x in seen.items()}


@pytest.mark.parametrize("asset, kind", [("cifar_resnet10_sat_bn", "bn"), ("cifar_resnet10_nofrost_nf", "nf")])
def test_statistics_equal_those_of_independent_hooks(asset, kind, data):
    model = nofrost.load_model(ASSETS / asset)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    stats = clean_vs_adversarial(model, data, n=N, batch_size=N, steps=3, seed=5)
    assert stats.kind == kind and stats.n == N
    got_kind, positions = measured_positions(model)
    assert got_kind == kind
    if kind == "bn":
        assert [name for name, _ in positions] == [name for name, _ in bn_layers(model)]
    else:
        assert positions and all(name.endswith(".conv1") for name, _ in positions)
    subset = stratified_subset(data, N, seed=5)
    x, y = subset.images.float() / 255, subset.targets
    with torch.no_grad():
        logits = model(x)
    x_adv = MetricBatch(model, model, x, y, logits, 8 / 255, "linf", derive_seed(5, 0)).adversarial("pgd", steps=3)
    assert not torch.equal(x_adv, x)
    clean, adv = hooked_moments(model, positions, x), hooked_moments(model, positions, x_adv)
    assert [s.name for s in stats.layers] == [name for name, _ in positions]
    for layer in stats.layers:
        torch.testing.assert_close(layer.clean_mean, clean[layer.name][0], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(layer.clean_var, clean[layer.name][1], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(layer.adv_mean, adv[layer.name][0], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(layer.adv_var, adv[layer.name][1], rtol=1e-4, atol=1e-5)
        assert layer.distance > 0
        if kind == "bn":
            module = dict(positions)[layer.name]
            assert torch.equal(layer.running_mean, module.running_mean) and torch.equal(layer.running_var, module.running_var)
        else:
            assert layer.running_mean is None
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # running stats untouched
    assert not model.training


def test_running_stats_by_index_and_name():
    model = nofrost.load_model(ASSETS / "cifar_resnet10_sat_bn")
    layers = bn_layers(model)
    name, mean, var = running_stats(model, 3)
    assert name == layers[2][0] and torch.equal(mean, layers[2][1].running_mean)
    assert torch.equal(running_stats(model, name)[2], var)
    with pytest.raises(ValueError, match=f"has {len(layers)} batch-norm layers"):
        running_stats(model, len(layers) + 1)
    with pytest.raises(ValueError, match="no batch-norm layer named 'nope'"):
        running_stats(model, "nope")
    with pytest.raises(ValueError, match="normalizer-free model keeps none"):
        running_stats(nofrost.load_model(ASSETS / "cifar_resnet10_nofrost_nf"), 1)


def test_a_model_without_positions_is_refused(data):
    with pytest.raises(ValueError, match="neither batch-norm layers nor normalizer-free residual blocks"):
        measured_positions(nn.Sequential(nn.Flatten(), nn.Linear(3072, 10)))


def test_channel_distance_by_hand():
    zero, one = torch.zeros(1), torch.ones(1)
    # equal variance 1, means 0 and 1: ¼ (1 − 1)·… + ¼ · 1 · (1 + 1) = 0.5
    assert channel_distance(zero, one, one, one, eps=0) == pytest.approx(0.5)
    # equal means, variances 1 and 4: ¼ (1/4 + 4 − 2) = 0.5625
    assert channel_distance(zero, one, zero, 4 * one, eps=0) == pytest.approx(0.5625)
    assert channel_distance(zero, one, zero, one, eps=0) == 0
    # invariant to a per-channel rescaling of the features (means × c, variances × c²)
    m_a, v_a, m_b, v_b = torch.tensor([0.1, -2.0]), torch.tensor([1.0, 3.0]), torch.tensor([0.3, -1.0]), torch.tensor([2.0, 0.5])
    c = torch.tensor([10.0, 0.1])
    assert channel_distance(c * m_a, c**2 * v_a, c * m_b, c**2 * v_b, eps=0) == pytest.approx(
        channel_distance(m_a, v_a, m_b, v_b, eps=0))
