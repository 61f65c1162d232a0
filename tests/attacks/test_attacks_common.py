"""Unit tests of the shared attack machinery in ``nofrost.attacks._common``."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from nofrost.attacks import (
    attack_mode,
    autocast,
    input_gradient,
    linf_bounds,
    project_linf,
    random_targets,
)


def mixed_model() -> nn.Module:
    model = nn.Sequential(
        nn.Linear(3, 3), nn.Sequential(nn.Dropout(0.1), nn.Linear(3, 3)), nn.BatchNorm1d(3)
    )
    model.train()
    model[1].eval()
    model[1][0].train()  # a training child inside an eval parent
    model[0].bias.requires_grad_(False)
    return model


def flags(model: nn.Module):
    return (
        [m.training for m in model.modules()],
        [p.requires_grad for p in model.parameters()],
    )


def test_attack_mode_eval_and_frozen_then_restored():
    model = mixed_model()
    before = flags(model)
    with attack_mode(model) as m:
        assert m is model
        assert not any(t.training for t in model.modules())
        assert not any(p.requires_grad for p in model.parameters())
    assert flags(model) == before


def test_attack_mode_train_mode_keeps_current_modes():
    model = mixed_model()
    before = flags(model)
    with attack_mode(model, train_mode=True):
        assert [m.training for m in model.modules()] == before[0]
        assert not any(p.requires_grad for p in model.parameters())
    assert flags(model) == before


def test_attack_mode_restores_on_exception_and_nests():
    model = mixed_model()
    before = flags(model)
    with pytest.raises(KeyError):
        with attack_mode(model):
            with attack_mode(model, train_mode=True):
                raise KeyError("boom")
    assert flags(model) == before


def test_attack_mode_tied_parameters():
    lin = nn.Linear(3, 3)
    model = nn.Sequential(lin, nn.ReLU(), lin)  # the same module (and parameters) twice
    lin.bias.requires_grad_(False)
    before = flags(model)
    with attack_mode(model):
        pass
    assert flags(model) == before


def test_input_gradient_leaves_parameter_grads_alone():
    model = nn.Linear(4, 2)
    x = torch.rand(3, 4, requires_grad=True)
    g = input_gradient(model(x).sum(), x)
    assert g.shape == x.shape
    assert torch.allclose(g, model.weight.sum(0).expand(3, 4))
    assert model.weight.grad is None and model.bias.grad is None


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    eps=st.floats(0.0, 1.0, allow_nan=False),
    dtype=st.sampled_from([torch.float32, torch.float64, torch.float16, torch.bfloat16]),
    seed=st.integers(0, 2**16),
)
def test_projection_is_exactly_within_the_ball(eps, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(64, generator=g).to(dtype)
    wild = (torch.rand(64, generator=g) * 3 - 1).to(dtype)  # far outside the ball and [0, 1]
    p = project_linf(wild, x, eps)
    assert p.dtype == dtype
    # Exact check for dtypes narrower than float64 (their differences are exact in float64):
    # rounding of x ± eps must not leak outside the ball, not even by one ulp.
    slack = 1e-15 if dtype == torch.float64 else 0.0
    assert float((p.double() - x.double()).abs().max()) <= eps + slack
    assert float(p.min()) >= 0 and float(p.max()) <= 1
    lo, hi = linf_bounds(x, eps)
    assert torch.all(lo <= x) and torch.all(x <= hi)
    # Points already inside stay put.
    assert torch.equal(project_linf(x, x, eps), x)


def test_random_targets_uniform_and_never_the_label():
    k = 5
    y = torch.arange(k).repeat(4000)
    t = random_targets(y, k, torch.Generator().manual_seed(0))
    assert t.dtype == torch.int64 and t.shape == y.shape
    assert not torch.any(t == y)
    counts = torch.zeros(k, k)
    counts.index_put_((y, t), torch.ones(len(y)), accumulate=True)
    off_diag = counts[~torch.eye(k, dtype=torch.bool)]
    expected = 4000 / (k - 1)
    assert float((off_diag - expected).abs().max()) < 0.1 * expected  # ~ 6 sigma


def test_random_targets_reproducible_and_validated():
    y = torch.tensor([0, 1, 2, 9])
    a = random_targets(y, 10, torch.Generator().manual_seed(3))
    b = random_targets(y, 10, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert random_targets(torch.tensor([0, 1]), 2).tolist() == [1, 0]  # only one other class
    with pytest.raises(ValueError, match="at least 2 classes"):
        random_targets(torch.tensor([0]), 1)
    with pytest.raises(ValueError, match="10 output classes"):
        random_targets(torch.tensor([10]), 10)
    with pytest.raises(ValueError, match="int64"):
        random_targets(torch.tensor([1.0]), 10)


def test_autocast_precisions_on_cpu():
    lin = nn.Linear(4, 4)
    x = torch.rand(2, 4)
    with autocast("bf16", "cpu"):
        assert lin(x).dtype == torch.bfloat16
    with autocast("fp32", torch.device("cpu")):
        assert lin(x).dtype == torch.float32
    # fp32 explicitly switches off an enclosing (e.g. training-loop) autocast.
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with autocast("fp32", "cpu"):
            assert lin(x).dtype == torch.float32
    with pytest.raises(ValueError, match="fp32, bf16"):
        autocast("fp16", "cpu")
    with pytest.raises(ValueError, match="cuda and cpu"):
        autocast("bf16", "meta")
