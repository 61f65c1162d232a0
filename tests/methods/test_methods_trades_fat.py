"""TRADES, FAT, TRADES-FAT: losses equal their formulas by hand; FAT's early stop is exact."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from nofrost.config import AttackConfig, MethodConfig
from nofrost.methods import StepContext, build_method, list_methods
from nofrost.methods.base import make_training_attack
from nofrost.methods.inner_max import inner_pgd, kl_divergence


@pytest.fixture
def batch():
    torch.manual_seed(0)
    return torch.rand(16, 3, 8, 8), torch.randint(0, 10, (16,))


@pytest.fixture
def model():
    torch.manual_seed(1)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 32), nn.ReLU(), nn.Linear(32, 10))


def stand_in(model, x, y):
    """A deterministic replacement for the inner maximization."""
    return (x + 0.03 * torch.sign(torch.sin(13 * x))).clamp(0, 1)


class Recording:
    """A training attack that records the options a method asks for and returns what
    ``attack`` makes (the stand-in by default)."""

    def __init__(self, attack=None):
        self.attack, self.options, self.outputs = attack, [], []

    def __call__(self, model, x, y, **options):
        self.options.append(options)
        out = self.attack(model, x, y, **options) if self.attack is not None else stand_in(model, x, y)
        self.outputs.append(out)
        return out


def test_registered():
    assert {"trades", "fat", "trades-fat"} <= set(list_methods())


def test_kl_divergence_is_kl_of_softmaxes():
    torch.manual_seed(0)
    a, b = torch.randn(5, 7), torch.randn(5, 7)
    p, q = a.softmax(1), b.softmax(1)
    by_hand = (p * (p.log() - q.log())).sum(1)
    assert torch.allclose(kl_divergence(a, b, reduction="none"), by_hand, atol=1e-6)
    assert kl_divergence(a, b).item() == pytest.approx(by_hand.mean().item(), rel=1e-5)
    assert kl_divergence(a, b).item() == pytest.approx(F.kl_div(b.log_softmax(1), p, reduction="batchmean").item(), rel=1e-5)
    assert kl_divergence(a, a).abs().item() < 1e-6


@pytest.mark.parametrize("name, beta", [("trades", None), ("trades", 6.0), ("trades-fat", None), ("trades-fat", 0.5)])
def test_trades_loss_matches_formula(name, beta, batch, model):
    x, y = batch
    method = build_method(MethodConfig(name=name, beta=beta))
    assert method.beta == (1.0 if beta is None else beta)  # β = 1 by default, as in the NoFrost paper
    attack = Recording()
    out = method(model, x, y, StepContext(attack=attack, label_smoothing=0.1))
    # x* from the training attack: the KL from x + 0.001·N(0, I), early-stopped for TRADES-FAT
    assert attack.options == [{"loss": "kl", "start": "normal", "tau": 1 if name == "trades-fat" else None}]
    x_adv = stand_in(model, x, y)
    p, q = model(x).softmax(1), model(x_adv).softmax(1)
    kl = (p * (p / q).log()).sum(1).mean()
    expected = F.cross_entropy(model(x), y, label_smoothing=0.1) + method.beta * kl
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert torch.equal(out.logits_clean, model(x)) and torch.equal(out.logits_adv, model(x_adv))
    # the KL term is differentiated through both p(x) and p(x*), as in the reference code
    out.loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_trades_kl_attack_maximizes_kl_within_the_ball(batch):
    x, y = batch
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 64, 10))
    model.train()
    stats = model[1].running_mean.clone()
    attack = make_training_attack(AttackConfig(eps=8 / 255, steps=5))
    torch.manual_seed(0)
    x_adv = attack(model, x, y, loss="kl", start="normal")
    assert (x_adv - x).abs().max() <= 8 / 255 + 1e-7 and x_adv.min() >= 0 and x_adv.max() <= 1
    assert model.training and all(p.requires_grad for p in model.parameters())
    assert torch.equal(model[1].running_mean, stats)  # generated in eval mode: BN statistics untouched
    model.eval()
    with torch.no_grad():
        start = (x + 0.001 * torch.randn_like(x)).clamp(0, 1)
        assert kl_divergence(model(x), model(x_adv)) > 10 * kl_divergence(model(x), model(start))


@pytest.mark.parametrize("tau", [0, 1, 3])
def test_fat_loss_is_ce_on_the_friendly_example(tau, batch, model):
    x, y = batch
    method = build_method(MethodConfig(name="fat", tau=tau))
    attack = Recording()
    out = method(model, x, y, StepContext(attack=attack))
    assert attack.options == [{"start": "uniform", "tau": tau}]  # PGD-K-τ: CE, uniform start
    assert out.loss.item() == pytest.approx(F.cross_entropy(model(stand_in(model, x, y)), y).item(), rel=1e-6)
    assert out.logits_clean is None and out.logits_adv is not None


class Threshold(nn.Module):
    """Two classes; class 1 iff the mean pixel exceeds 0.5. For label 0 the CE gradient
    w.r.t. every pixel is positive, so each PGD step adds exactly the step size to it."""

    def forward(self, x):
        v = x.flatten(1).mean(1)
        return torch.stack([torch.zeros_like(v), 10 * (v - 0.5)], dim=1)


@pytest.mark.parametrize("tau", [0, 1, 2])
def test_early_stop_happens_tau_steps_after_the_flip(tau):
    alpha, K = 0.02, 10
    # Example i flips (is first misclassified) after exactly i + 1 steps; the last one already
    # is misclassified at the start.
    starts = [0.5 - alpha * (i + 0.5) for i in range(6)] + [0.6]
    x = torch.tensor(starts).view(-1, 1, 1, 1).expand(-1, 1, 2, 2).contiguous()
    y = torch.zeros(len(starts), dtype=torch.long)
    x_adv, steps = inner_pgd(Threshold(), x, y, 0.3, steps=K, step_size=alpha, loss="ce", tau=tau, start="none")
    expected = [min(i + 1 + tau, K) for i in range(6)] + [tau]
    assert steps.tolist() == expected
    assert torch.allclose(x_adv[:, 0, 0, 0], torch.tensor(starts) + alpha * torch.tensor(expected, dtype=torch.float), atol=1e-6)
    # without early stop every example takes all K steps
    _, all_steps = inner_pgd(Threshold(), x, y, 0.3, steps=K, step_size=alpha, tau=None, start="none")
    assert all_steps.tolist() == [K] * len(starts)


def test_trades_fat_uses_the_early_stopped_kl_attack(batch, model):
    x, _ = batch
    with torch.no_grad():
        wrong = (model(x).argmax(1) + 1) % 10  # every example misclassified from the start
    method = build_method(MethodConfig(name="trades-fat", tau=0), AttackConfig(eps=8 / 255, steps=5))
    attack = Recording(make_training_attack(AttackConfig(eps=8 / 255, steps=5)))
    torch.manual_seed(0)
    method(model, x, wrong, StepContext(attack=attack))
    (x_adv,) = attack.outputs
    torch.manual_seed(0)
    start = (x + 0.001 * torch.randn_like(x)).clamp(0, 1)
    assert torch.allclose(x_adv, start)  # τ = 0: stopped before the first step
    _, steps = inner_pgd(model, x, wrong, 8 / 255, steps=5, loss="kl", tau=2, start="normal")
    assert steps.tolist() == [2] * len(x)


def test_unused_or_bad_fields_are_refused():
    with pytest.raises(ValueError, match="method 'trades' does not use method.tau; it takes method.beta"):
        build_method(MethodConfig(name="trades", tau=1))
    with pytest.raises(ValueError, match="does not use method.beta"):
        build_method(MethodConfig(name="fat", beta=1.0))
    with pytest.raises(ValueError, match="'sat' does not use method.replays"):
        build_method(MethodConfig(name="sat", replays=2))
