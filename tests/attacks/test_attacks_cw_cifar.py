"""CW∞ (PGD on the Carlini–Wagner margin): loss checks on toys, behaviour on a real robust model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nofrost.attacks import get, pgd_attack
from nofrost.attacks.cw import cw_linf_attack, cw_margin

EPS = 8 / 255


def robust_accuracy(model, x_adv, y, n_total):
    with torch.no_grad():
        return float((model(x_adv).argmax(1) == y).sum()) / n_total


def gen(seed):
    return torch.Generator().manual_seed(seed)


def test_margin_values_and_confidence_clamp():
    logits = torch.tensor([[3.0, 1.0, 2.0], [0.0, 5.0, -1.0], [100.0, 0.0, 0.0]])
    y = torch.tensor([0, 2, 1])
    assert torch.equal(cw_margin(logits, y, confidence=50), torch.tensor([1.0, -6.0, -50.0]))
    assert torch.equal(cw_margin(logits, y, confidence=0), torch.tensor([1.0, 0.0, 0.0]))


def test_registered_reproducible_and_validates():
    assert get("cw-linf") is cw_linf_attack
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(48, 16), nn.ReLU(), nn.Linear(16, 4)).eval()
    x = torch.rand(5, 3, 4, 4, generator=gen(1))
    y = torch.randint(0, 4, (5,), generator=gen(2))
    a = cw_linf_attack(model, x, y, EPS, steps=5, generator=gen(3))
    b = cw_linf_attack(model, x, y, EPS, steps=5, generator=gen(3))
    c = cw_linf_attack(model, x, y, EPS, steps=5, generator=gen(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    # Without a random start the attack is deterministic.
    d = cw_linf_attack(model, x, y, EPS, steps=5, random_start=False, generator=gen(3))
    e = cw_linf_attack(model, x, y, EPS, steps=5, random_start=False, generator=gen(4))
    assert torch.equal(d, e)
    for bad in (-1.0, float("inf"), "50", None):
        with pytest.raises(ValueError, match="confidence"):
            cw_linf_attack(model, x, y, EPS, confidence=bad)
    with pytest.raises(ValueError, match="steps"):
        cw_linf_attack(model, x, y, EPS, steps=0)


def test_stops_pushing_beyond_confidence():
    """Once the wrong class leads by κ the loss is flat: with κ = 0 a fooled point stays put."""

    class Linear(nn.Module):
        def forward(self, x):
            s = x.flatten(1).sum(1)
            return torch.stack([s, 0.5 * torch.ones_like(s) * x.flatten(1).shape[1]], dim=1)

    x = torch.full((2, 1, 2, 2), 0.1)  # class 1 wins already: margin 0.4 - 2 < 0
    y = torch.zeros(2, dtype=torch.long)
    out = cw_linf_attack(Linear(), x, y, 0.05, confidence=0.0, random_start=False)
    assert torch.equal(out, x)
    # With κ = 50 it keeps lowering the true logit (the pixel sum) to the edge of the ball.
    out = cw_linf_attack(Linear(), x, y, 0.05, random_start=False)
    assert torch.allclose(out, x - 0.05)


def test_cw_lowers_accuracy_well_below_clean(robust):
    model, x, y, n = robust
    clean = len(y) / n
    cw = robust_accuracy(model, cw_linf_attack(model, x, y, EPS, generator=gen(0)), y, n)
    pgd = robust_accuracy(model, pgd_attack(model, x, y, EPS, steps=20, generator=gen(0)), y, n)
    print(f"sat_bn, {n} test images, eps 8/255: clean {clean:.3f}, CW-20 {cw:.3f}, PGD-20 {pgd:.3f}")
    assert cw <= clean - 0.08
    assert cw <= 0.33
    # The two losses find mostly the same points on this model: within a few examples.
    assert abs(cw - pgd) <= 0.06
