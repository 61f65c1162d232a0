"""Per-example metrics (decision margin, boundary thickness, KL smoothness): hand computations,
the properties the definitions promise, and how evaluate() runs them."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

import nofrost
from nofrost.data import load_dataset
from nofrost.evaluate import evaluate
from nofrost.evaluate.metrics import MetricBatch, list_metrics, metric_info, parse_metric_specs
from nofrost.evaluate.metrics.margin import probability_margin
from nofrost.evaluate.metrics.smoothness import kl_divergence
from nofrost.evaluate.metrics.thickness import thickness_along_segment

ASSET = Path(__file__).resolve().parents[1] / "assets" / "cifar_resnet10_sat_bn"


def test_registry_lists_the_three_properties_of_table_5():
    assert {"margin", "thickness", "smoothness"} <= set(list_metrics())
    assert [metric_info(m).display for m in ("margin", "thickness", "smoothness")] == ["M(x)", "T(x)", "D(x)"]
    assert [metric_info(m).higher_is_better for m in ("margin", "thickness", "smoothness")] == [True, True, False]
    assert metric_info("thickness").options()["beta"] == 0.75 and metric_info("thickness").options()["alpha"] == 0


def test_margin_by_hand():
    # softmax(2, 1, 0) = (0.66524, 0.24473, 0.09003): 0.66524 − 0.24473;
    # softmax(0, 3, 1) = (0.04201, 0.84380, 0.11420) with label 0: 0.04201 − 0.84380 (wrong: < 0).
    margin = probability_margin(torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0]]), torch.tensor([0, 0]))
    assert margin.tolist() == pytest.approx([0.4205124847, -0.8017846683], abs=1e-6)


def test_kl_by_hand_and_zero_for_the_same_point():
    # p = (σ(1), σ(−1)), q = (σ(−1), σ(1)): log p − log q = (1, −1), so KL = σ(1) − σ(−1) = tanh(1/2).
    kl = kl_divergence(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]]))
    assert float(kl) == pytest.approx(math.tanh(0.5), abs=1e-6)
    logits = torch.randn(5, 10, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(kl_divergence(logits, logits), torch.zeros(5), atol=1e-6)


class Tilted(nn.Module):
    """Two classes on one-pixel images: logits (k·u, −k·u) with u = 4(x − 0.5), so that
    p_0 − p_1 = tanh(k·u). With k = atanh(0.75)/0.8 the gap lies in (0, 0.75) exactly for
    u in (0, 0.8)."""

    k = math.atanh(0.75) / 0.8

    def forward(self, x):
        u = 4 * (x.flatten(1).mean(dim=1) - 0.5)
        return torch.stack([self.k * u, -self.k * u], dim=1)


def tilted_batch(x_value: float) -> MetricBatch:
    model = Tilted()
    x = torch.full((1, 1, 1, 1), x_value)
    return MetricBatch(model, model, x, torch.zeros(1, dtype=torch.long), model(x), 0.1, "linf", 0)


def test_thickness_by_hand():
    """x = 0.75 (u = 1), x* = 0.25 (u = −1): along t x + (1 − t) x*, u = 2t − 1, and the gap is in
    (0, 0.75) for t in (0.5, 0.9). Of the 128 points t = k/127 that holds for k = 64…114: 51 of
    them. ‖x − x*‖₂ = 0.5, so T = 0.5 · 51/128."""
    batch = tilted_batch(0.75)
    x_star = torch.full((1, 1, 1, 1), 0.25)
    value = thickness_along_segment(batch, x_star, torch.tensor([1]), alpha=0.0, beta=0.75, points=128)
    assert float(value) == pytest.approx(0.5 * 51 / 128, abs=1e-7)


def test_thickness_is_zero_without_a_gap_inside_the_band():
    """x* = 0.875 (u = 1.5): the gap runs from tanh(k) = 0.84 to tanh(1.5k) = 0.95, never inside
    (0, 0.75), although x* is 0.125 away."""
    batch = tilted_batch(0.75)
    x_star = torch.full((1, 1, 1, 1), 0.875)
    value = thickness_along_segment(batch, x_star, torch.tensor([1]), alpha=0.0, beta=0.75, points=128)
    assert float(value) == 0.0
    # The same segment counts once the band is wide enough to hold those gaps.
    wide = thickness_along_segment(batch, x_star, torch.tensor([1]), alpha=0.0, beta=0.99, points=128)
    assert float(wide) == pytest.approx(0.125, abs=1e-6)


@pytest.fixture(scope="module")
def measured():
    model = nofrost.load_model(ASSET)
    data = load_dataset("cifar10-mini", "test")
    metrics = "margin,thickness:steps=5,smoothness:steps=5"
    result = evaluate(model, data, attacks="clean", n=30, metrics=metrics, batch_size=16)
    return model, data, result


def test_evaluate_measures_the_metrics_per_example(measured):
    model, data, result = measured
    values = result.per_example.metrics
    assert set(result.metrics) == set(values) == {"margin", "thickness:steps=5", "smoothness:steps=5"}
    assert all(len(v) == result.n == 30 for v in values.values())
    for label, v in values.items():
        assert result.metrics[label] == pytest.approx(float(v.mean()))
    # The margin is the model's own softmax margin, and its sign is whether the model is right.
    from nofrost.data import stratified_subset
    subset = stratified_subset(data, 30)
    with torch.no_grad():
        logits = model(subset.images.float() / 255)
    assert torch.allclose(values["margin"], probability_margin(logits, subset.targets), atol=1e-5)
    assert torch.equal(values["margin"] > 0, result.per_example.clean)
    assert bool((values["thickness:steps=5"] >= 0).all()) and bool((values["thickness:steps=5"] <= 1.0 + 1e-5).all())
    assert bool((values["thickness:steps=5"] > 0).any())
    assert bool((values["smoothness:steps=5"] >= -1e-6).all()) and bool((values["smoothness:steps=5"] > 0).any())
    assert "metrics" in result.to_json()


def test_metrics_do_not_depend_on_each_other_or_on_the_attacks(measured):
    model, data, result = measured
    alone = evaluate(model, data, attacks="pgd:steps=2", n=30, metrics="thickness:steps=5", batch_size=16)
    assert torch.equal(alone.per_example.metrics["thickness:steps=5"],
                       result.per_example.metrics["thickness:steps=5"])


def test_classes_keep_only_those_classes():
    model = nofrost.load_model(ASSET)
    data = load_dataset("cifar10-mini", "test")
    result = evaluate(model, data, attacks="clean", classes=[0, 1], metrics="margin")
    assert result.n == int(((data.targets == 0) | (data.targets == 1)).sum())
    with pytest.raises(ValueError, match="no examples"):
        evaluate(model, data, attacks="clean", classes=[12])


@pytest.mark.parametrize("text, message", [
    ("margn", "unknown metric 'margn'; available: margin"),
    ("thickness:betta=0.5", "has no option 'betta'"),
    ("margin,margin", "asked for twice"),
    ("margin:steps=3", "its options: none"),
])
def test_bad_metric_specs_say_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        parse_metric_specs(text)


def test_bad_thickness_options_are_refused():
    batch = tilted_batch(0.75)
    with pytest.raises(ValueError, match="alpha must be below beta"):
        metric_info("thickness").compute(batch, alpha=0.8, beta=0.75)
    with pytest.raises(ValueError, match="points must be an integer"):
        metric_info("thickness").compute(batch, points=1)
