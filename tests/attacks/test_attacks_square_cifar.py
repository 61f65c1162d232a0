"""Square Attack: schedule and query discipline on toys, behaviour on a real robust model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nofrost.attacks import get, pgd_attack
from nofrost.attacks.square import p_schedule, square_attack

EPS = 8 / 255


def robust_accuracy(model, x_adv, y, n_total):
    with torch.no_grad():
        return float((model(x_adv).argmax(1) == y).sum()) / n_total


def gen(seed):
    return torch.Generator().manual_seed(seed)


class Recorder(nn.Module):
    """A small CNN that records the batch size of every call and refuses gradient mode."""

    def __init__(self, num_classes=4):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
            nn.Linear(32, num_classes),
        )  # fmt: skip
        self.sizes: list[int] = []

    def forward(self, x):
        assert not torch.is_grad_enabled(), "square is a black-box attack: no autograd"
        self.sizes.append(x.shape[0])
        return self.net(x)


def test_schedule_is_the_reference_one_rescaled():
    # On a 10,000-query budget the iteration is used as is.
    expected = {0: 0.8, 10: 0.8, 11: 0.4, 50: 0.4, 51: 0.2, 200: 0.2, 201: 0.1, 501: 0.05,
                1001: 0.025, 2001: 0.0125, 4001: 0.00625, 6001: 0.003125, 8001: 0.0015625,
                9999: 0.0015625}  # fmt: skip
    for it, p in expected.items():
        assert p_schedule(0.8, it, 10000) == pytest.approx(p)
    # With 400 queries iteration i counts as i * 25: the same shape, 25 times faster.
    assert p_schedule(0.8, 0, 400) == 0.8
    assert p_schedule(0.8, 1, 400) == pytest.approx(0.4)  # 25 > 10
    assert p_schedule(0.8, 3, 400) == pytest.approx(0.2)  # 75 > 50
    assert p_schedule(0.8, 399, 400) == pytest.approx(0.8 / 512)


def test_registered_no_gradients_and_query_budget():
    assert get("square") is square_attack
    model = Recorder()
    x = torch.rand(6, 3, 8, 8, generator=gen(0))
    with torch.no_grad():
        y = model.net(x).argmax(1)  # all clean-correct
    x_adv = square_attack(model, x, y, 1 / 255, queries=30, generator=gen(1))
    # Clean pass + initialisation on all 6, then at most 29 more queries, on fewer and fewer.
    assert model.sizes[:2] == [6, 6]
    assert len(model.sizes) <= 2 + 29
    assert all(a >= b for a, b in zip(model.sizes[1:], model.sizes[2:]))
    assert float((x_adv - x).abs().max()) <= 1 / 255 + 1e-6
    # Every pixel is at the ball's edge (x ± eps, clipped): the ℓ∞ attack's vertices.
    lo, hi = (x - 1 / 255).clamp(0, 1), (x + 1 / 255).clamp(0, 1)
    assert bool((torch.isclose(x_adv, lo) | torch.isclose(x_adv, hi)).all())


def test_queries_one_is_the_initialisation_only():
    model = Recorder()
    x = torch.rand(3, 3, 8, 8, generator=gen(0))
    with torch.no_grad():
        y = model.net(x).argmax(1)
    square_attack(model, x, y, 4 / 255, queries=1, generator=gen(1))
    assert len(model.sizes) == 2


def test_stops_on_fooled_examples_and_leaves_misclassified_ones():
    model = Recorder()
    x = torch.rand(8, 3, 8, 8, generator=gen(2))
    with torch.no_grad():
        pred = model.net(x).argmax(1)
    y = pred.clone()
    y[:3] = (pred[:3] + 1) % 4  # the first three are misclassified already
    x_adv = square_attack(model, x, y, 0.3, queries=200, generator=gen(3))
    assert torch.equal(x_adv[:3], x[:3])
    with torch.no_grad():
        fooled = model.net(x_adv).argmax(1) != y
    # At eps 0.3 a random 4-class CNN is fooled quickly; fooled images are not queried again.
    assert bool(fooled.all())
    assert len(model.sizes) < 200
    assert max(model.sizes[1:]) <= 5


def test_reproducible_with_generator():
    model = Recorder()
    x = torch.rand(4, 3, 8, 8, generator=gen(4))
    with torch.no_grad():
        y = model.net(x).argmax(1)
    a = square_attack(model, x, y, 2 / 255, queries=20, generator=gen(5))
    b = square_attack(model, x, y, 2 / 255, queries=20, generator=gen(5))
    c = square_attack(model, x, y, 2 / 255, queries=20, generator=gen(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_validation():
    model = Recorder()
    x = torch.rand(2, 3, 8, 8)
    y = torch.zeros(2, dtype=torch.long)
    for bad in (0.0, 1.5, float("nan"), "0.8", True):
        with pytest.raises(ValueError, match="p_init"):
            square_attack(model, x, y, EPS, p_init=bad)
    for bad in (0, -5, 400.0):
        with pytest.raises(ValueError, match="queries"):
            square_attack(model, x, y, EPS, queries=bad)


def test_more_queries_not_weaker_and_below_clean(robust):
    model, x, y, n = robust
    clean = len(y) / n
    few = robust_accuracy(model, square_attack(model, x, y, EPS, queries=50, generator=gen(0)), y, n)
    many = robust_accuracy(model, square_attack(model, x, y, EPS, queries=300, generator=gen(0)), y, n)
    print(f"sat_bn, {n} test images, eps 8/255: clean {clean:.3f}, Square-50 {few:.3f}, Square-300 {many:.3f}")
    assert many <= few + 0.01
    assert many < clean - 0.03
    # A black-box attack with 300 queries is not stronger than white-box PGD-20 here.
    pgd = robust_accuracy(model, pgd_attack(model, x, y, EPS, steps=20, generator=gen(1)), y, n)
    print(f"PGD-20 {pgd:.3f}")
    assert many >= pgd - 0.03


def test_close_to_autoattack_square(robust):
    pytest.importorskip("pyautoattack")
    from pyautoattack.square import SquareAttack

    model, x, y, n = robust
    ours = robust_accuracy(model, square_attack(model, x, y, EPS, queries=200, generator=gen(7)), y, n)
    with torch.random.fork_rng():
        # Its n_queries counts the queries after the initialisation.
        reference = SquareAttack(model, n_queries=199, eps=EPS, p_init=0.8, seed=0)
        theirs = robust_accuracy(model, reference.perturb(x, y), y, n)
    print(f"Square-200: nofrost {ours:.3f}, pyautoattack {theirs:.3f}")
    assert abs(ours - theirs) <= 0.05
