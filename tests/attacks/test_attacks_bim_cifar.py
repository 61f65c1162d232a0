"""BIM (iterative FGSM): definition checks on a toy model, behaviour on a real robust model.

The real model is the adversarially trained test asset ``cifar_resnet10_sat_bn`` (39% clean,
~23% PGD-20 at 8/255 on 1,000 cifar10-mini test images).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nofrost.attacks import default_step_size, get, pgd_attack
from nofrost.attacks.bim import bim_attack

EPS = 8 / 255


def robust_accuracy(model, x_adv, y, n_total):
    with torch.no_grad():
        return float((model(x_adv).argmax(1) == y).sum()) / n_total


def toy():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 32), nn.ReLU(), nn.Linear(32, 5))
    g = torch.Generator().manual_seed(1)
    return model.eval(), torch.rand(6, 3, 8, 8, generator=g), torch.randint(0, 5, (6,), generator=g)


def test_registered_and_is_pgd_without_random_start():
    assert get("bim") is bim_attack
    model, x, y = toy()
    for steps in (1, 7, 20):
        ours = bim_attack(model, x, y, EPS, steps=steps)
        reference = pgd_attack(model, x, y, EPS, steps=steps, random_start=False)
        assert torch.equal(ours, reference)
    # Kurakin et al.'s step: path length min(1.25 eps, eps + 4/255) over the steps.
    one = bim_attack(model, x, y, EPS, steps=1)
    assert float((one - x).abs().max()) <= EPS + 1e-6
    assert default_step_size(EPS, 20) == pytest.approx(1.25 * EPS / 20)


def test_deterministic_and_validates():
    model, x, y = toy()
    assert torch.equal(bim_attack(model, x, y, EPS), bim_attack(model, x, y, EPS))
    with pytest.raises(ValueError, match="steps"):
        bim_attack(model, x, y, EPS, steps=0)
    with pytest.raises(ValueError, match="step_size"):
        bim_attack(model, x, y, EPS, step_size=-1.0)
    with pytest.raises(ValueError, match="generator"):
        bim_attack(model, x, y, EPS, generator=0)


def test_bim_lowers_accuracy_well_below_clean(robust):
    model, x, y, n = robust
    clean = len(y) / n
    acc = robust_accuracy(model, bim_attack(model, x, y, EPS), y, n)
    print(f"sat_bn, {n} test images, eps 8/255: clean {clean:.3f}, BIM-20 {acc:.3f}")
    assert acc <= clean - 0.08
    assert acc <= 0.33


def test_matches_torchattacks_bim(robust):
    torchattacks = pytest.importorskip("torchattacks")
    model, x, y, n = robust
    steps = 20
    ours = robust_accuracy(model, bim_attack(model, x, y, EPS, steps=steps), y, n)
    reference = torchattacks.BIM(model, eps=EPS, alpha=default_step_size(EPS, steps), steps=steps)
    theirs = robust_accuracy(model, reference(x, y), y, n)
    print(f"BIM-20: nofrost {ours:.3f}, torchattacks {theirs:.3f}")
    assert abs(ours - theirs) <= 0.02
