"""FAB-T under ℓ2: the minimal-ℓ2 hyperplane step, the attack's contract, and the official code.

The step is checked against a dense bisection, the optimality (KKT) conditions, brute force on
tiny problems and AutoAttack's own ``projection_l2``; the attack against exact answers on a
linear model and against ``pyautoattack``'s ``FABAttack_PT(norm='L2', targeted=True)`` on the
real adversarially trained ``tests/assets/cifar_resnet10_sat_bn`` (200 stratified cifar10-mini
test images, reduced budgets on both sides).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import nofrost
from nofrost.attacks import get
from nofrost.attacks._common import autocast
from nofrost.attacks._core import Ball
from nofrost.attacks._registry import attack_info
from nofrost.attacks.autoattack import run_autoattack
from nofrost.attacks.fab import (
    _fab_run,
    fab_on_correct,
    fab_targeted_attack,
    l2_hyperplane_step,
)
from nofrost.data import load_dataset, stratified_subset

ASSET = Path(__file__).resolve().parents[1] / "assets" / "cifar_resnet10_sat_bn"
EPS = 0.5  # ℓ2 radius of AutoAttack's CIFAR-10 leaderboard
REL = 1e-5  # the ℓ2 ball holds up to the rounding of the projection


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def l2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).flatten(1).norm(dim=1)


def assert_in_l2_ball(x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> None:
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype
    assert float(x_adv.min()) >= 0 and float(x_adv.max()) <= 1
    assert float(l2(x_adv, x).max()) <= eps * (1 + REL)


# ---- the hyperplane step ----------------------------------------------------------------------


def problem(m: int, d: int, seed: int, *, zeros: bool = False, spread: float = 1.0):
    """Rows ``(t, w, b)``: points in the box (a tenth of their coordinates on a bound), normals
    (optionally with exact and negligible zeros) and offsets, feasible or not by ``spread``."""
    g = seeded(seed)
    t = torch.rand(m, d, generator=g, dtype=torch.float64)
    t = torch.where(torch.rand(m, d, generator=g, dtype=torch.float64) < 0.1, t.round(), t)
    w = torch.randn(m, d, generator=g, dtype=torch.float64)
    if zeros:
        u = torch.rand(m, d, generator=g, dtype=torch.float64)
        w = torch.where(u < 0.2, 0.0, torch.where(u < 0.3, 1e-10 * w, w))
    b = (w * t).sum(1) + spread * torch.randn(m, generator=g, dtype=torch.float64) * w.norm(dim=1)
    return t, w, b


def parts(t, w, b):
    """``c = b − w·t``, ``v = sign(c) w``, the room to the bound along ``v`` and the largest
    change of ``w·δ`` the box allows (coordinates with ``|w_i| ≤ 1e-8`` held fixed)."""
    c = b - (w * t).sum(1)
    v = torch.where(c[:, None] >= 0, w, -w)
    v = torch.where(v.abs() > 1e-8, v, 0.0)
    room = torch.where(v > 0, 1 - t, t)
    return c, v, room, (v.abs() * room).sum(1)


def bisection_step(t, w, b, iterations: int = 200):
    """The same answer by bisection on λ of ``Σ|v_i| min(λ|v_i|, room_i) = |c|`` (float64)."""
    c, v, room, _ = parts(t, w, b)
    lo = torch.zeros(t.shape[0], dtype=torch.float64)
    hi = torch.full_like(lo, 1e9)
    for _ in range(iterations):
        mid = (lo + hi) / 2
        reached = (v.abs() * torch.minimum(mid[:, None] * v.abs(), room)).sum(1)
        enough = reached >= c.abs()
        hi = torch.where(enough, mid, hi)
        lo = torch.where(enough, lo, mid)
    return v.sign() * torch.minimum(hi[:, None] * v.abs(), room)


@settings(max_examples=40, deadline=None)
@given(
    m=st.integers(1, 6),
    d=st.integers(1, 40),
    seed=st.integers(0, 10_000),
    zeros=st.booleans(),
    spread=st.sampled_from([0.05, 0.5, 3.0]),
)
def test_l2_step_matches_bisection_and_kkt(m, d, seed, zeros, spread):
    t, w, b = problem(m, d, seed, zeros=zeros, spread=spread)
    delta = l2_hyperplane_step(t, w, b)
    p = t + delta
    assert (p >= -1e-12).all() and (p <= 1 + 1e-12).all()
    assert torch.allclose(delta, bisection_step(t, w, b), atol=1e-9)
    c, v, room, reach = parts(t, w, b)
    feasible = reach >= c.abs() * (1 + 1e-9)
    # Where the hyperplane meets the box the point lies on it ...
    assert torch.allclose((w * p).sum(1)[feasible], b[feasible], atol=1e-9)
    # ... and KKT holds: δ = clip(μ v) in the box for one μ ≥ 0, i.e. every coordinate off its
    # bound moves by μ|v_i| (the same μ) and every coordinate on its bound would move further.
    for i in feasible.nonzero().squeeze(1).tolist():
        moving = v[i] != 0
        free = moving & (delta[i].abs() < room[i] - 1e-12)
        if free.any():
            mu = delta[i][free].abs() / v[i][free].abs()
            assert torch.allclose(mu, mu.mean().expand_as(mu), rtol=1e-7)
            bound = moving & ~free
            assert (mu.mean() * v[i][bound].abs() >= room[i][bound] - 1e-9).all()
        assert (delta[i][~moving] == 0).all()
        assert (delta[i] * v[i] >= 0).all()  # every coordinate moves toward the hyperplane


@pytest.mark.parametrize("d", [1, 2, 3])
def test_l2_step_beats_every_point_on_the_hyperplane_in_the_box(d):
    # Brute force: random points of the box, moved onto the hyperplane along its normal, are
    # (where they stay in the box) random points of (hyperplane ∩ box); none is closer.
    t, w, b = problem(24, d, seed=d, spread=0.3)
    delta = l2_hyperplane_step(t, w, b)
    g = seeded(100 + d)
    for i in range(t.shape[0]):
        p = torch.rand(50_000, d, generator=g, dtype=torch.float64)
        z = p - ((p @ w[i] - b[i]) / w[i].square().sum())[:, None] * w[i]
        z = z[((z >= 0) & (z <= 1)).all(1)]
        if z.shape[0] == 0:  # the hyperplane misses the box: tested below
            continue
        best = (z - t[i]).norm(dim=1).min()
        ours = delta[i].norm()
        assert torch.allclose((w[i] * (t[i] + delta[i])).sum(), b[i], atol=1e-9)
        assert ours <= best + 1e-9  # nothing on the hyperplane in the box is closer ...
        assert best <= ours + 0.02  # ... and the samples come close (the test can see)


def test_l2_step_where_the_hyperplane_misses_the_box():
    # As AutoAttack's projection_l2: every coordinate moves to its bound toward the hyperplane
    # (as far as the box allows), and coordinates with |w_i| ≤ 1e-8 stay.
    t = torch.tensor([[0.2, 0.5, 1.0, 0.3, 0.7], [0.9, 0.0, 0.4, 0.6, 0.5]], dtype=torch.float64)
    w = torch.tensor([[1.0, -2.0, 3.0, 0.0, 1e-9], [-1.0, 0.5, 2.0, -1e-9, 4.0]], dtype=torch.float64)
    b = torch.tensor([100.0, -100.0], dtype=torch.float64)  # far beyond w·z for every z in the box
    delta = l2_hyperplane_step(t, w, b)
    expected = torch.tensor(
        [[0.8, -0.5, 0.0, 0.0, 0.0], [0.1, 0.0, -0.4, 0.0, -0.5]], dtype=torch.float64
    )
    assert torch.allclose(delta, expected, atol=1e-15)


def test_l2_step_on_the_hyperplane_and_easy_cases_by_hand():
    t = torch.tensor([[0.5, 0.5], [0.5, 0.5], [0.0, 0.5], [0.9, 0.5]], dtype=torch.float64)
    w = torch.tensor([[1.0, 1.0], [3.0, 4.0], [1.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    # Already on it; unconstrained (δ = c w/‖w‖²); x_1 stuck at 0; x_1 hits 1 and x_2 goes on.
    b = torch.tensor([1.0, 3.5 + 1.0, 0.5 - 0.4, 1.4 + 0.6], dtype=torch.float64)
    expected = torch.tensor(
        [[0.0, 0.0], [0.12, 0.16], [0.0, -0.4], [0.1, 0.5]], dtype=torch.float64
    )
    assert torch.allclose(l2_hyperplane_step(t, w, b), expected, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_l2_step_matches_the_official_projection(dtype):
    fab_projections = pytest.importorskip("pyautoattack.fab_projections")
    for seed, spread in [(0, 0.05), (1, 0.5), (2, 3.0), (3, 30.0)]:
        t, w, b = problem(64, 300, seed, zeros=True, spread=spread)
        t, w, b = t.to(dtype), w.to(dtype), b.to(dtype)
        ours = l2_hyperplane_step(t, w, b)
        official = fab_projections.projection_l2(t, w, b)
        if dtype == torch.float64:
            assert torch.allclose(ours, official, atol=1e-10)
        else:  # fp32 prefix sums in another order: a few rows near the box's reach may differ
            close = (ours - official).abs().amax(1) <= 1e-5
            assert close.float().mean() >= 0.95


# ---- the attack on small models ---------------------------------------------------------------


class SmallCNN(nn.Module):
    def __init__(self, num_classes: int = 5):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.Dropout(0.2),
            nn.Flatten(), nn.Linear(6 * 36, num_classes),
        )  # fmt: skip

    def forward(self, x):
        return self.net(x)


def images(n: int = 24, seed: int = 1, num_classes: int = 5):
    g = seeded(seed)
    return torch.rand(n, 3, 6, 6, generator=g), torch.randint(0, num_classes, (n,), generator=g)


def test_fab_l2_finds_the_minimal_perturbation_of_a_linear_model():
    # Two classes, linear logits, images mid-range so the box never binds: the smallest ℓ2
    # perturbation that flips example i is |f(x_i)| / ‖w_1 − w_0‖₂ exactly, and FAB's first
    # step lands on the boundary (times the 1.05 overshoot).
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(108, 2)).double()
    g = seeded(0)
    x = 0.45 + 0.1 * torch.rand(12, 3, 6, 6, generator=g, dtype=torch.float64)
    with torch.no_grad():
        logits = model(x)
    y = logits.argmax(1)
    w = model[1].weight
    margin = logits.gather(1, y[:, None]).squeeze(1) - logits.gather(1, 1 - y[:, None]).squeeze(1)
    dist = (margin / (w[1] - w[0]).norm()).detach()
    direction = ((w[1] - w[0]) / (w[1] - w[0]).norm()).detach()
    assert float(dist.max() * direction.abs().max()) < 0.3  # the box never binds
    for i in range(12):
        xi, yi, d = x[i : i + 1], y[i : i + 1], float(dist[i])
        below = fab_targeted_attack(model, xi, yi, 0.97 * d, n_target_classes=1, steps=20, norm="l2")
        with torch.no_grad():
            assert model(below).argmax(1).item() == yi.item()  # nothing exists below d
        above = fab_targeted_attack(model, xi, yi, 1.08 * d, n_target_classes=1, steps=20, norm="l2")
        with torch.no_grad():
            assert model(above).argmax(1).item() != yi.item()
        assert float(l2(above, xi)) <= 1.08 * d * (1 + REL)


@pytest.mark.parametrize("eps", [0.05, 0.3, 1.0])
def test_fab_l2_contract_on_a_small_cnn(eps):
    model = SmallCNN()
    # Mixed modes and frozen parameters that the attack must leave as they are.
    model.train()
    model.net[1].eval()
    model.net[5].weight.requires_grad_(False)
    modes = [m.training for m in model.modules()]
    flags = [p.requires_grad for p in model.parameters()]
    params = [p.detach().clone() for p in model.parameters()]
    buffers = [bf.clone() for bf in model.buffers()]
    x, y = images()
    kwargs = {"steps": 8, "n_target_classes": 3, "restarts": 2, "norm": "l2"}
    x_adv = fab_targeted_attack(model, x, y, eps, generator=seeded(5), **kwargs)
    assert_in_l2_ball(x_adv, x, eps)
    assert [m.training for m in model.modules()] == modes
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), params))
    assert all(torch.equal(p, q) for p, q in zip(model.buffers(), buffers))
    assert all(p.grad is None for p in model.parameters())
    # Reproducible from the generator (the restarts draw from it).
    again = fab_targeted_attack(model, x, y, eps, generator=seeded(5), **kwargs)
    assert torch.equal(x_adv, again)
    # Misclassified examples come back unchanged.
    model.eval()
    with torch.no_grad():
        wrong = model(x).argmax(1) != y
    assert wrong.any() and (~wrong).any()
    assert torch.equal(x_adv[wrong], x[wrong])


def test_fab_l2_eps_zero_returns_the_input_and_breaks_some_at_larger_eps():
    model = SmallCNN().eval()
    x, y = images()
    assert torch.equal(fab_targeted_attack(model, x, y, 0.0, steps=5, n_target_classes=2, norm="l2"), x)
    with torch.no_grad():
        clean = int((model(x).argmax(1) == y).sum())
        robust = int((model(fab_targeted_attack(model, x, y, 1.0, steps=10, n_target_classes=2,
                                                norm="l2")).argmax(1) == y).sum())  # fmt: skip
    assert robust < clean


def test_fab_l2_breaks_only_within_eps():
    # An example counts as broken only if FAB found a misclassified point within ε: at a small
    # ε it finds misclassified points (far) outside, which must not count.
    model = SmallCNN().eval()
    x, y = images(48)
    with torch.no_grad():
        correct = model(x).argmax(1) == y
    x, y = x[correct], y[correct]
    targets = torch.stack([(y + 1) % 5, (y + 2) % 5], dim=1)
    options = dict(steps=10, restarts=1, alpha_max=0.1, eta=1.05, beta=0.9, early_stop=True, generator=None)
    anywhere = fab_on_correct(model, x, y, Ball(x, 100.0, "l2"), targets, **options)[1]
    counts = []
    for eps in (0.02, 0.4):
        x_adv, broken = fab_on_correct(model, x, y, Ball(x, eps, "l2"), targets, **options)
        assert_in_l2_ball(x_adv, x, eps)
        with torch.no_grad():
            wrong = model(x_adv).argmax(1) != y
        assert wrong[broken].all()
        counts.append(int(broken.sum()))
    assert counts[0] < counts[1] < int(anywhere.sum()) + 1
    assert counts[0] < int(anywhere.sum())  # found, but not within ε = 0.02: not broken


def test_fab_l2_restart_is_a_gaussian_point_at_half_eps():
    # fab_base.py's L2 restart: x0 + min(ε, 1e10)/2 · t/‖t‖₂ with Gaussian t, clipped to [0, 1].
    model = SmallCNN().eval()
    x = 0.4 + 0.2 * images(8)[0]  # mid-range: ε/2 never reaches the box's faces
    y = torch.zeros(8, dtype=torch.long)
    target = torch.ones(8, dtype=torch.long)
    eps = 0.3
    starts = []
    for seed in (0, 1):
        x1, broken = _fab_run(
            model, x, y, target, Ball(x, eps, "l2"), steps=0, alpha_max=0.1, eta=1.05, beta=0.9,
            random_start=True, early_stop=True, generator=seeded(seed),
            precision_ctx=autocast("fp32", "cpu"),
        )  # fmt: skip
        assert not broken.any()
        assert torch.allclose(l2(x1, x), torch.full((8,), eps / 2), rtol=1e-5)
        # Gaussian, not the ℓ∞ restart's uniform cube: the largest pixel change is far below ε/2.
        assert float((x1 - x).abs().amax()) < eps / 4
        starts.append(x1)
    assert not torch.equal(starts[0], starts[1])


def test_fab_l2_is_registered_for_both_norms_and_refuses_others():
    assert attack_info("fab-t").norms == ("linf", "l2")
    x, y = images(4)
    with pytest.raises(ValueError, match="norm"):
        fab_targeted_attack(SmallCNN(), x, y, 0.5, norm="l1")
    with pytest.raises(ValueError, match="diameter"):  # ε on the wrong scale under ℓ2
        fab_targeted_attack(SmallCNN(), x, y, 127.0, norm="l2")


def test_autoattack_runs_fab_t_under_l2():
    # The registered on_correct core, as AutoAttack calls it, under ℓ2.
    model = SmallCNN().eval()
    x, y = images(32)
    x_adv, masks = run_autoattack(model, x, y, 0.5, version="custom", norm="l2", seed=0,
                                  attacks=[("fab-t", {"steps": 8, "n_target_classes": 2})])  # fmt: skip
    assert_in_l2_ball(x_adv, x, 0.5)
    with torch.no_grad():
        robust = model(x_adv).argmax(1) == y
    assert torch.equal(robust, masks["fab-t"])
    assert int(robust.sum()) < int(masks["clean"].sum())


# ---- against the official code on the real model ---------------------------------------------

N = 200
STEPS = 10  # FAB iterations on both sides (standard AutoAttack: 100)
TARGETS = 3  # FAB-T targets on both sides (standard: 9)
TOLERANCE = 0.02  # robust accuracy, as a fraction of the N images
NEAR_TIES = 2  # other batch shapes run other float reductions, which can flip a near-tie


@pytest.fixture(scope="module")
def real():
    model = nofrost.load_model(ASSET)
    data = stratified_subset(load_dataset("cifar10-mini", "test"), N)
    return model, data.images.float() / 255, data.targets


def test_fab_t_l2_agrees_with_the_official_code(real):
    fab_pt = pytest.importorskip("pyautoattack.fab_pt")
    model, x, y = real
    with torch.no_grad():
        clean_ok = model(x).argmax(1) == y
    clean = float(clean_ok.float().mean())
    assert 0.3 < clean < 0.5  # the asset is the model we think it is
    # early_stop=False: ours then keeps shrinking the perturbation as the official code does,
    # so the closest adversarials can be compared example by example, not only the accuracy.
    start = time.perf_counter()
    x_ours = get("fab-t")(model, x, y, EPS, steps=STEPS, n_target_classes=TARGETS, norm="l2",
                          early_stop=False, generator=seeded(0))  # fmt: skip
    ours_s = time.perf_counter() - start
    official = fab_pt.FABAttack_PT(model, norm="L2", eps=EPS, n_restarts=1, n_iter=STEPS,
                                   n_target_classes=TARGETS, seed=0, targeted=True, device="cpu")  # fmt: skip
    start = time.perf_counter()
    with torch.random.fork_rng():  # the official code seeds the global RNG
        x_official = official.perturb(x, y)
    official_s = time.perf_counter() - start
    assert_in_l2_ball(x_ours, x, EPS)
    assert_in_l2_ball(x_official, x, EPS)
    with torch.no_grad():
        broken_ours = clean_ok & (model(x_ours).argmax(1) != y)
        broken_official = clean_ok & (model(x_official).argmax(1) != y)
    ours, theirs = clean - float(broken_ours.float().mean()), clean - float(broken_official.float().mean())
    print(f"fab-t l2: ours {ours:.3f} ({ours_s:.1f} s) official {theirs:.3f} ({official_s:.1f} s), "
          f"clean {clean:.3f}")  # fmt: skip
    assert abs(ours - theirs) <= TOLERANCE + 1e-9
    assert int((broken_ours ^ broken_official).sum()) <= NEAR_TIES
    assert ours < clean - 0.05  # it is an attack
    both = broken_ours & broken_official
    gap = (l2(x_ours, x) - l2(x_official, x))[both].abs()
    assert float((gap <= 1e-4).float().mean()) >= 0.95  # the same closest adversarials
