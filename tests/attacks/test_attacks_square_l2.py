"""ℓ2 Square Attack: the authors' code as the reference, and the attack contract under ℓ2.

The real model is ``tests/assets/cifar_resnet10_sat_bn`` (a cifar_resnet10 trained with SAT
under ℓ∞: ~39% clean accuracy on the 200 stratified cifar10-mini test images used here). At
ε = 0.5 under ℓ2 a 100-query Square Attack breaks only a few of its ~77 clean-correct images,
so besides the robust accuracies the cross-check compares how far each attack lowers the
margin of the images it attacks, which a broken search would not match.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import pytest
import torch
from torch import nn

import nofrost
from nofrost.attacks import attack_info, get
from nofrost.attacks.square import _margin, _pattern, _rings, square_attack
from nofrost.data import load_dataset, stratified_subset

ASSET = Path(__file__).resolve().parents[1] / "assets" / "cifar_resnet10_sat_bn"
N = 200
EPS = 0.5
QUERIES = 100  # both sides; the official n_queries counts the queries after the start
TOLERANCE = 0.02  # robust accuracy, as a fraction of the N images
RTOL = 1e-5  # ‖x_adv − x‖₂ ≤ ε (1 + RTOL)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def real():
    model = nofrost.load_model(ASSET)
    data = stratified_subset(load_dataset("cifar10-mini", "test"), N)
    return model, data.images.float() / 255, data.targets


@pytest.fixture(scope="module")
def few(real):
    """12 real images the model gets right, and 4 it gets wrong (first 16 of the subset)."""
    model, x, y = real
    with torch.no_grad():
        correct = model(x).argmax(1) == y
    right, wrong = correct.nonzero().squeeze(1)[:12], (~correct).nonzero().squeeze(1)[:4]
    rows = torch.cat([right, wrong])
    return model, x[rows], y[rows], 12


def l2_distance(x_adv, x):
    return (x_adv - x).flatten(1).norm(dim=1)


def assert_in_ball(x_adv, x, eps):
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype
    assert float(x_adv.min()) >= 0 and float(x_adv.max()) <= 1
    assert float(l2_distance(x_adv, x).max()) <= eps * (1 + RTOL)


def margins(model, x, y):
    with torch.no_grad():
        return _margin(model(x), y)


# --------------------------------------------------------------------------------------------
# Against the authors' code
# --------------------------------------------------------------------------------------------


def test_pattern_is_the_reference_one():
    pyautoattack = pytest.importorskip("pyautoattack")
    reference = pyautoattack.square.SquareAttack(nn.Identity(), norm="L2", eps=EPS)
    reference.device = torch.device("cpu")
    for rows in range(1, 10):
        for cols in range(1, 10):
            expected = reference.eta_rectangles(rows, cols).double()
            assert torch.allclose(_rings(rows, cols), expected, atol=1e-6), (rows, cols)
    like = torch.zeros(1, dtype=torch.float64)
    for side in range(1, 20):
        with torch.random.fork_rng():
            expected = reference.eta(side).double()  # transposed at random: compare to both
        ours = _pattern(side, like)
        assert torch.allclose(ours, expected, atol=1e-6) or torch.allclose(ours.T, expected, atol=1e-6)
        assert float(ours.norm()) == pytest.approx(1.0)


def test_agrees_with_the_official_code(real):
    pytest.importorskip("pyautoattack")
    from pyautoattack.square import SquareAttack

    class KeepFinal(SquareAttack):
        """The official attack, keeping the final points of every attacked image (``perturb``
        returns only those that fool the model) to compare margins too."""

        def attack_single_run(self, x, y):
            queries, self.final = super().attack_single_run(x, y)
            return queries, self.final

    model, x, y = real
    clean_margin = margins(model, x, y)
    correct = clean_margin > 0
    clean = float(correct.float().mean())
    assert 0.3 < clean < 0.5  # the asset is the model we think it is

    start = time.perf_counter()
    x_ours = square_attack(model, x, y, EPS, queries=QUERIES, norm="l2", generator=gen(0))
    ours_s = time.perf_counter() - start
    official = KeepFinal(model, norm="L2", eps=EPS, n_queries=QUERIES - 1, p_init=0.8, seed=0,
                         resc_schedule=True, device="cpu")  # fmt: skip
    with torch.random.fork_rng():  # the official code seeds the global RNG
        start = time.perf_counter()
        x_official = official.perturb(x, y)
        official_s = time.perf_counter() - start
    for x_adv in (x_ours, x_official):
        assert_in_ball(x_adv, x, EPS)
    ours_margin, official_margin = margins(model, x_ours, y), margins(model, x_official, y)
    ours, theirs = float((ours_margin > 0).float().mean()), float((official_margin > 0).float().mean())

    # How much each lowers the (non-negative part of the) margin of the attacked images.
    before = float(clean_margin[correct].mean())
    ours_drop = before - float(ours_margin[correct].clamp(min=0).mean())
    official_drop = before - float(margins(model, official.final, y[correct]).clamp(min=0).mean())
    print(
        f"l2 square, eps {EPS}, {QUERIES} queries, {N} images: clean {clean:.3f}, robust accuracy "
        f"ours {ours:.3f} ({ours_s:.1f} s) official {theirs:.3f} ({official_s:.1f} s); mean margin "
        f"{before:.4f} lowered by {ours_drop:.4f} (ours) {official_drop:.4f} (official)"
    )
    assert abs(ours - theirs) <= TOLERANCE + 1e-9
    assert ours <= clean - 0.01 and theirs <= clean - 0.01  # both break some images
    assert official_drop > 0.02
    assert 0.75 <= ours_drop / official_drop <= 1.33


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------


def test_registered_for_both_norms():
    assert attack_info("square").norms == ("linf", "l2")
    assert attack_info("square").on_correct is not None


def test_stays_in_the_l2_ball_and_the_image_box(few):
    model, x, y, _ = few
    for eps in (0.25, 3.0):  # 3.0: most of the perturbation is clipped to [0, 1]
        x_adv = get("square")(model, x, y, eps, queries=20, norm="l2", generator=gen(1))
        assert_in_ball(x_adv, x, eps)
    # Away from the box's faces nothing is clipped and the whole budget is used: ‖δ‖₂ = ε.
    grey = torch.full((3, 3, 32, 32), 0.5)
    never_fooled = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 3))
    with torch.no_grad():
        never_fooled[1].weight.mul_(1e-3)
        never_fooled[1].bias.copy_(torch.tensor([100.0, 0.0, 0.0]))
    x_adv = square_attack(never_fooled, grey, torch.zeros(3, dtype=torch.long), 0.5, queries=30,
                          norm="l2", generator=gen(2))  # fmt: skip
    assert_in_ball(x_adv, grey, 0.5)
    assert torch.allclose(l2_distance(x_adv, grey), torch.full((3,), 0.5), rtol=1e-5)


def test_keeps_dtype_and_odd_shapes():
    torch.manual_seed(0)
    for c, h, w in [(3, 8, 8), (1, 5, 9), (2, 2, 7), (1, 1, 1)]:
        model = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, 4)).double()
        x = torch.rand(5, c, h, w, generator=gen(3), dtype=torch.float64)
        with torch.no_grad():
            y = model(x).argmax(1)
        eps = min(0.3, (c * h * w) ** 0.5)
        x_adv = square_attack(model, x, y, eps, queries=15, norm="l2", generator=gen(4))
        assert_in_ball(x_adv, x, eps)
        assert bool((l2_distance(x_adv, x) > 0).all())  # all were attacked


def test_model_state_unchanged(few):
    model, x, y, _ = few
    model = copy.deepcopy(model)
    model.train()  # mixed modes and frozen parameters
    first = next(iter(model.children()))
    first.eval()
    params = list(model.parameters())
    params[0].requires_grad_(False)
    state = {k: v.clone() for k, v in model.state_dict().items()}  # parameters and BN buffers
    training = {k: m.training for k, m in model.named_modules()}
    flags = [p.requires_grad for p in params]
    square_attack(model, x, y, EPS, queries=10, norm="l2", generator=gen(5))
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    assert {k: m.training for k, m in model.named_modules()} == training
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())


def test_reproducible_with_a_generator(few):
    model, x, y, _ = few
    a = square_attack(model, x, y, EPS, queries=10, norm="l2", generator=gen(6))
    b = square_attack(model, x, y, EPS, queries=10, norm="l2", generator=gen(6))
    c = square_attack(model, x, y, EPS, queries=10, norm="l2", generator=gen(7))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_eps_zero_and_misclassified_images_are_returned_unchanged(few):
    model, x, y, n_right = few
    assert torch.equal(square_attack(model, x, y, 0.0, queries=10, norm="l2", generator=gen(8)), x)
    x_adv = square_attack(model, x, y, EPS, queries=10, norm="l2", generator=gen(8))
    assert torch.equal(x_adv[n_right:], x[n_right:])  # the model is wrong there already
    assert bool((l2_distance(x_adv[:n_right], x[:n_right]) > EPS / 2).all())


def test_more_queries_not_weaker(few):
    model, x, y, n_right = few
    x, y = x[:n_right], y[:n_right]
    eps = 1.0
    clean = margins(model, x, y).clamp(min=0).mean()
    found = {
        queries: margins(
            model, square_attack(model, x, y, eps, queries=queries, norm="l2", generator=gen(9)), y
        ).clamp(min=0).mean()
        for queries in (5, 150)
    }
    print(f"mean margin of {n_right} images at eps {eps}: clean {clean:.4f}, found {found}")
    assert found[150] < found[5] < clean
