"""MI-FGSM ("MIA"): definition checks on a toy model, behaviour on a real robust model."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nofrost.attacks import get, pgd_attack
from nofrost.attacks.mifgsm import mifgsm_attack

EPS = 8 / 255


def robust_accuracy(model, x_adv, y, n_total):
    with torch.no_grad():
        return float((model(x_adv).argmax(1) == y).sum()) / n_total


def toy():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 32), nn.Tanh(), nn.Linear(32, 5))
    g = torch.Generator().manual_seed(1)
    return model.eval(), torch.rand(6, 3, 8, 8, generator=g), torch.randint(0, 5, (6,), generator=g)


def textbook_mifgsm(model, x, y, eps, steps, decay):
    """Dong et al.'s update written plainly, as an independent reference."""
    alpha = eps / steps
    g = torch.zeros_like(x)
    x_adv = x.clone()
    for _ in range(steps):
        x_adv.requires_grad_(True)
        loss = F.cross_entropy(model(x_adv), y)
        (grad,) = torch.autograd.grad(loss, x_adv)
        g = decay * g + grad / grad.abs().sum(dim=(1, 2, 3), keepdim=True)
        x_adv = x_adv.detach() + alpha * g.sign()
        x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)
    return x_adv


def test_registered_and_matches_textbook_update():
    assert get("mifgsm") is mifgsm_attack
    model, x, y = toy()
    ours = mifgsm_attack(model, x, y, EPS, steps=10)
    reference = textbook_mifgsm(model, x, y, EPS, steps=10, decay=1.0)
    assert torch.allclose(ours, reference, atol=1e-6)
    # The default budget: 20 steps of eps/20 from the clean image.
    assert float((mifgsm_attack(model, x, y, EPS) - x).abs().max()) <= EPS + 1e-6


def test_no_momentum_is_iterative_fgsm_with_step_eps_over_steps():
    model, x, y = toy()
    ours = mifgsm_attack(model, x, y, EPS, steps=5, decay=0.0)
    reference = pgd_attack(model, x, y, EPS, steps=5, step_size=EPS / 5, random_start=False)
    assert torch.equal(ours, reference)


def test_zero_gradient_does_not_move_or_nan():
    class Constant(nn.Module):
        def forward(self, x):
            return x.sum(dim=(1, 2, 3))[:, None] * 0 + torch.tensor([1.0, 0.0])

    x = torch.rand(3, 1, 4, 4)
    y = torch.zeros(3, dtype=torch.long)
    out = mifgsm_attack(Constant(), x, y, EPS)
    assert torch.equal(out, x)


def test_pgd_step_rule_is_the_reference_codes():
    # NoFrost's test.py: min(1.25 eps, eps + 4/255) / steps, i.e. 0.5/255 for 8/255 and 20 steps.
    model, x, y = toy()
    ours = mifgsm_attack(model, x, y, EPS, steps=20, step_size="pgd")
    assert torch.equal(ours, mifgsm_attack(model, x, y, EPS, steps=20, step_size=0.5 / 255))
    assert not torch.equal(ours, mifgsm_attack(model, x, y, EPS, steps=20))  # Dong et al.: 0.4/255
    with pytest.raises(ValueError, match="'pgd' for PGD's rule"):
        mifgsm_attack(model, x, y, EPS, step_size="dong")


def test_validation():
    model, x, y = toy()
    for bad in (-1.0, float("nan"), "1", True):
        with pytest.raises(ValueError, match="decay"):
            mifgsm_attack(model, x, y, EPS, decay=bad)
    with pytest.raises(ValueError, match="steps"):
        mifgsm_attack(model, x, y, EPS, steps=2.0)


def test_mifgsm_lowers_accuracy_well_below_clean(robust):
    model, x, y, n = robust
    clean = len(y) / n
    acc = robust_accuracy(model, mifgsm_attack(model, x, y, EPS), y, n)
    print(f"sat_bn, {n} test images, eps 8/255: clean {clean:.3f}, MIA-20 {acc:.3f}")
    assert acc <= clean - 0.08
    assert acc <= 0.33


def test_matches_torchattacks_mifgsm(robust):
    torchattacks = pytest.importorskip("torchattacks")
    model, x, y, n = robust
    ours = robust_accuracy(model, mifgsm_attack(model, x, y, EPS, steps=20), y, n)
    reference = torchattacks.MIFGSM(model, eps=EPS, alpha=EPS / 20, steps=20, decay=1.0)
    theirs = robust_accuracy(model, reference(x, y), y, n)
    print(f"MIA-20: nofrost {ours:.3f}, torchattacks {theirs:.3f}")
    assert abs(ours - theirs) <= 0.02
