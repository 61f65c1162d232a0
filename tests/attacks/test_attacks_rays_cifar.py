"""RayS: exact boundary on a linear toy, budget discipline, and real CIFAR-10 models.

A standard (non-robust) model is trained here in about a second: a linear softmax classifier
on cifar10-mini pixels (~35% test accuracy, and, like every standard model, not robust).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nofrost
from nofrost.attacks import get, pgd_attack
from nofrost.attacks.rays import rays_attack
from nofrost.data import load_dataset, stratified_subset

ASSET = Path(__file__).resolve().parents[1] / "assets" / "cifar_resnet10_sat_bn"
N = 100
EPS = 8 / 255


def accuracy(model, x, y, n_total):
    with torch.no_grad():
        return float((model(x).argmax(1) == y).sum()) / n_total


def clean_correct(model, data):
    x, y = data.images.float() / 255, data.targets
    with torch.no_grad():
        correct = model(x).argmax(1) == y
    return x[correct], y[correct]


@pytest.fixture(scope="module")
def test_images():
    return stratified_subset(load_dataset("cifar10-mini", "test"), N)


@pytest.fixture(scope="module")
def standard_model():
    """A linear classifier on normalised pixels, trained with Adam for a few epochs."""
    train = stratified_subset(load_dataset("cifar10-mini", "train"), 4000, seed=1)
    x, y = train.images.float() / 255, train.targets
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        g = torch.Generator().manual_seed(0)
        for _ in range(4):
            perm = torch.randperm(len(x), generator=g)
            for i in range(0, len(x), 128):
                batch = perm[i : i + 128]
                loss = F.cross_entropy(model((x[batch] - 0.5) * 4), y[batch])
                opt.zero_grad()
                loss.backward()
                opt.step()
    linear = model

    class Standard(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = linear

        def forward(self, x):
            return self.linear((x - 0.5) * 4)

    return Standard().eval()


class LinearToy(nn.Module):
    """Two classes, ``z0 = w·(x − 0.5) + b``, ``z1 = 0``: at x = 0.5 class 0 wins by b.

    The smallest ℓ∞ perturbation that flips it is ``b / ‖w‖₁`` along ``−sign(w)``, a sign
    direction: RayS can find it exactly.
    """

    def __init__(self, w, b):
        super().__init__()
        self.w, self.b = w, b
        self.calls = 0
        self.images = 0

    def forward(self, x):
        self.calls += 1
        self.images += x.shape[0]
        z0 = (x - 0.5).flatten(1) @ self.w + self.b
        return torch.stack([z0, torch.zeros_like(z0)], dim=1)


def linear_toy():
    w = torch.randn(16, generator=torch.Generator().manual_seed(0))
    b = 0.2 * float(w.abs().sum())  # boundary at ℓ∞ radius exactly 0.2 (no clipping at 0.5 ± 0.2)
    return LinearToy(w, b), torch.full((3, 1, 4, 4), 0.5), torch.zeros(3, dtype=torch.long)


def test_finds_the_exact_linear_boundary():
    assert get("rays") is rays_attack
    model, x, y = linear_toy()
    x_adv = rays_attack(model, x, y, 0.21, queries=2000)
    with torch.no_grad():
        assert bool((model(x_adv).argmax(1) == 1).all())
    assert float((x_adv - x).abs().max()) <= 0.21 + 1e-6
    # It is a vertex of the ball, tilted against w: w·δ ≤ -b.
    delta = (x_adv - x).flatten(1)
    assert torch.allclose(delta.abs(), torch.full_like(delta, 0.21))
    assert bool((delta @ model.w <= -model.b).all())
    # Just inside the boundary nothing can be found: the point at radius eps is returned.
    x_in = rays_attack(model, x, y, 0.19, queries=2000)
    with torch.no_grad():
        assert bool((model(x_in).argmax(1) == 0).all())
    assert float((x_in - x).abs().max()) <= 0.19 + 1e-6


def test_query_budget_is_respected():
    model, x, y = linear_toy()
    rays_attack(model, x, y, 0.05, queries=37)  # unreachable: runs out of queries
    assert model.images <= 3 * 37 + 3  # + the clean pass
    model.images = 0
    rays_attack(model, x, y, 0.05, queries=1)
    assert model.images == 3 + 3


def test_deterministic_and_misclassified_returned_unchanged():
    model, x, y = linear_toy()
    y = torch.tensor([0, 1, 0])  # the second image is misclassified already
    a = rays_attack(model, x, y, 0.1, queries=100)
    b = rays_attack(model, x, y, 0.1, queries=100, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert torch.equal(a[1], x[1])


def test_validation():
    model, x, y = linear_toy()
    for bad in (0.0, -1e-3, 2.0, float("nan"), "1e-3"):
        with pytest.raises(ValueError, match="tol"):
            rays_attack(model, x, y, EPS, tol=bad)
    with pytest.raises(ValueError, match="queries"):
        rays_attack(model, x, y, EPS, queries=0)


def test_rays_fools_a_standard_model(standard_model, test_images):
    model = standard_model
    x, y = clean_correct(model, test_images)
    clean = len(y) / N
    rays = accuracy(model, rays_attack(model, x, y, EPS, queries=400), y, N)
    pgd = accuracy(model, pgd_attack(model, x, y, EPS, steps=20), y, N)
    print(f"linear standard model, {N} test images, eps 8/255: clean {clean:.3f}, "
          f"RayS-400 {rays:.3f}, PGD-20 {pgd:.3f}")
    assert clean >= 0.25
    assert rays <= 0.25 * clean


def test_rays_on_the_robust_model(test_images):
    model = nofrost.load_model(ASSET)
    x, y = clean_correct(model, test_images)
    clean = len(y) / N
    x_adv = rays_attack(model, x, y, EPS, queries=200)
    assert float((x_adv - x).abs().max()) <= EPS + 1e-6
    rays = accuracy(model, x_adv, y, N)
    pgd = accuracy(model, pgd_attack(model, x, y, EPS, steps=20), y, N)
    print(f"sat_bn, {N} test images, eps 8/255: clean {clean:.3f}, RayS-200 {rays:.3f}, PGD-20 {pgd:.3f}")
    assert rays < clean  # finds some
    assert rays >= pgd - 0.03  # but a hard-label attack does not beat white-box PGD here
