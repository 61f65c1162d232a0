"""st / sat / pgdat: the loss on a fixed batch equals Eq. (1) computed by hand."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from nofrost.config import AttackConfig, MethodConfig
from nofrost.methods import StepContext, build_method, list_methods
from nofrost.methods.base import make_training_attack


@pytest.fixture
def batch():
    torch.manual_seed(0)
    x = torch.rand(16, 3, 8, 8)
    y = torch.randint(0, 10, (16,))
    return x, y


@pytest.fixture
def model():
    torch.manual_seed(1)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 32), nn.ReLU(), nn.Linear(32, 10))


def fixed_attack(calls):
    """A deterministic stand-in for PGD so the formula can be checked exactly."""

    def attack(model, x, y):
        calls.append(len(x))
        return (x + 0.03 * torch.sign(torch.sin(13 * x))).clamp(0, 1)

    return attack


def test_registered_methods():
    assert {"st", "sat", "pgdat"} <= set(list_methods())


@pytest.mark.parametrize("name, lam", [("st", 0.0), ("sat", 0.5), ("pgdat", 1.0), ("sat", 0.3)])
def test_loss_matches_equation_one(name, lam, batch, model):
    x, y = batch
    calls = []
    ctx = StepContext(attack=fixed_attack(calls), label_smoothing=0.1)
    method = build_method(MethodConfig(name=name, lam=lam if name == "sat" else None))
    out = method(model, x, y, ctx)
    x_adv = (x + 0.03 * torch.sign(torch.sin(13 * x))).clamp(0, 1)
    expected = (1 - lam) * F.cross_entropy(model(x), y, label_smoothing=0.1) + lam * F.cross_entropy(model(x_adv), y, label_smoothing=0.1)
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-6)
    # Only the terms with non-zero weight are computed: no wasted attack in standard training.
    assert (out.logits_clean is None) == (lam == 1.0)
    assert (out.logits_adv is None) == (lam == 0.0)
    assert calls == ([] if lam == 0 else [len(x)])


def test_fixed_lambda_methods_refuse_another_lambda():
    with pytest.raises(ValueError, match="use method 'sat' with method.lam=0.3"):
        build_method(MethodConfig(name="pgdat", lam=0.3))
    with pytest.raises(ValueError, match="unknown training method 'nope'; available: .*sat"):
        build_method(MethodConfig(name="nope"))


def test_training_attack_respects_budget_and_restores_model(batch, model):
    x, y = batch
    model.train()
    flags = [p.requires_grad for p in model.parameters()]
    attack = make_training_attack(AttackConfig(eps=4 / 255, steps=3))
    x_adv = attack(model, x, y)
    assert (x_adv - x).abs().max() <= 4 / 255 + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert model.training and [p.requires_grad for p in model.parameters()] == flags
    with torch.no_grad():
        assert F.cross_entropy(model(x_adv), y) > F.cross_entropy(model(x), y)


def test_gradient_flows_only_from_the_loss(batch, model):
    """The attack must not leave gradients on parameters; backward of the loss must give them."""
    x, y = batch
    method = build_method(MethodConfig(name="sat"))
    out = method(model, x, y, StepContext(attack=make_training_attack(AttackConfig(steps=2))))
    assert all(p.grad is None for p in model.parameters())
    out.loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
