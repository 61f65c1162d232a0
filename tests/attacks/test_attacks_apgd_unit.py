"""APGD, FAB-T and AutoAttack on small synthetic models (fast; real-model checks elsewhere)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from nofrost.attacks import ATTACKS, get
from nofrost.attacks.apgd import (
    apgd_ce_attack,
    apgd_checkpoints,
    apgd_dlr_attack,
    apgd_targeted_attack,
    dlr_loss,
    targeted_dlr_loss,
)
from nofrost.attacks.autoattack import autoattack_plan, robust_accuracies, run_autoattack
from nofrost.attacks import fab
from nofrost.attacks.fab import fab_targeted_attack, linf_hyperplane_step

EPS = 8 / 255


class CountingMLP(nn.Module):
    """A small MLP on 3x6x6 images that counts forward calls and the rows it sees."""

    def __init__(self, num_classes: int = 5, dtype=torch.float32, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(108, 32), nn.ReLU(), nn.Linear(32, num_classes)
        ).to(dtype)
        self.calls = 0
        self.rows = 0

    def forward(self, x):
        self.calls += 1
        self.rows += x.shape[0]
        return self.net(x)


def data(n=16, num_classes=5, dtype=torch.float32, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, 6, 6, generator=g, dtype=dtype)
    y = torch.randint(0, num_classes, (n,), generator=g)
    return x, y


def predictions(model, x):
    with torch.no_grad():
        return model(x).argmax(1)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ---- schedule and losses ----------------------------------------------------------------------


def test_checkpoints_follow_the_authors_code():
    # p = 0, 0.22, 0.41, 0.57, 0.70, 0.80, 0.87, 0.93, 0.99: the paper's 100 steps.
    assert apgd_checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]
    assert apgd_checkpoints(200) == [44, 82, 114, 140, 160, 174, 186, 198]
    # autopgd_base.py / torchattacks at 20 steps (the NoFrost paper's APGD): periods
    # max(int(0.22 * 20), 1) = 4, then 1 shorter each (size_decr 1) down to n_iter_min 1.
    assert apgd_checkpoints(20) == [4, 7, 9, *range(10, 21)]
    assert apgd_checkpoints(1) == [1]
    with pytest.raises(ValueError, match="steps"):
        apgd_checkpoints(0)


def test_dlr_losses_by_hand():
    z = torch.tensor([[3.0, 1.0, 2.0, 0.0], [3.0, 1.0, 2.0, 0.0]])
    # y=0: -(3 - 2) / (3 - 1); y=1 (misclassified): -(1 - 3) / (3 - 1)
    assert torch.allclose(dlr_loss(z, torch.tensor([0, 1])), torch.tensor([-0.5, 1.0]))
    # targeted: -(z_y - z_t) / (z_π1 - (z_π3 + z_π4) / 2) = -(3 - 1) / (3 - 0.5)
    got = targeted_dlr_loss(z, torch.tensor([0, 0]), torch.tensor([1, 2]))
    assert torch.allclose(got, torch.tensor([-2 / 2.5, -1 / 2.5]))
    # shift and scale invariance
    y = torch.tensor([0, 1])
    assert torch.allclose(dlr_loss(5 * z + 7, y), dlr_loss(z, y))


def test_dlr_needs_three_classes_and_targeted_needs_k_plus_one():
    with pytest.raises(ValueError, match="at least 3 classes"):
        dlr_loss(torch.zeros(2, 2), torch.tensor([0, 1]))
    x, y = data(4, num_classes=2)
    model = CountingMLP(2)
    model.train()
    with pytest.raises(ValueError, match="at least 3 classes"):
        apgd_dlr_attack(model, x, y, EPS)
    assert model.training and all(p.requires_grad for p in model.parameters())
    with pytest.raises(ValueError, match="at least 3 classes"):
        get("autoattack")(model, x, y, EPS, version="fast")
    with pytest.raises(ValueError, match="at least 4 classes"):
        apgd_targeted_attack(CountingMLP(3), *data(4, num_classes=3), EPS, n_target_classes=2)
    with pytest.raises(ValueError, match="n_target_classes=9 needs at least 10 classes"):
        apgd_targeted_attack(CountingMLP(5), *data(4), EPS)
    with pytest.raises(ValueError, match="n_target_classes=9 needs at least 10 classes"):
        fab_targeted_attack(CountingMLP(5), *data(4), EPS)
    with pytest.raises(ValueError, match="n_target_classes=4 needs at least 5"):
        apgd_targeted_attack(CountingMLP(4), *data(4, num_classes=4), EPS, n_target_classes=4)
    # apgd-ce and fab-t work with 2 classes
    apgd_ce_attack(model, x, y, EPS, steps=2)
    fab_targeted_attack(model, x, y, EPS, steps=2, n_target_classes=1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"steps": 0}, "steps"),
        ({"steps": 2.0}, "steps"),
        ({"restarts": 0}, "restarts"),
        ({"rho": 0.0}, "rho"),
        ({"rho": 1.5}, "rho"),
        ({"early_stop": 1}, "early_stop"),
        ({"precision": "fp16"}, "precision"),
        ({"generator": 0}, "generator"),
    ],
)
def test_apgd_rejects_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        apgd_ce_attack(CountingMLP(), *data(4), EPS, **kwargs)


# ---- APGD behaviour ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["apgd-ce", "apgd-dlr", "apgd-t", "fab-t"])
def test_reproducible_and_misclassified_examples_unchanged(name):
    model = CountingMLP()
    x, y = data(24)
    kwargs = {"steps": 10}
    if name in ("apgd-t", "fab-t"):
        kwargs["n_target_classes"] = 3
    if name != "fab-t":
        kwargs["generator"] = gen(3)
    a = get(name)(model, x, y, EPS, **kwargs)
    if name != "fab-t":
        kwargs["generator"] = gen(3)
    b = get(name)(model, x, y, EPS, **kwargs)
    assert torch.equal(a, b)
    wrong = predictions(model, x) != y
    assert wrong.any()
    assert torch.equal(a[wrong], x[wrong])
    assert float((a - x).abs().max()) <= EPS + 1e-6


def test_forward_passes_of_a_robust_run():
    # eps so small nothing can be fooled: 1 clean pass + 1 at the start + 1 per step, with
    # exactly the correctly classified rows in every attack pass.
    model = CountingMLP()
    x, y = data(16)
    correct = int((predictions(model, x) == y).sum())
    model.calls = model.rows = 0
    apgd_ce_attack(model, x, y, 1e-6, steps=7, generator=gen())
    assert model.calls == 1 + 1 + 7
    assert model.rows == 16 + correct * 8


def test_broken_examples_leave_the_batch():
    model = CountingMLP()
    x, y = data(32)
    correct = int((predictions(model, x) == y).sum())
    model.calls = model.rows = 0
    x_adv = apgd_ce_attack(model, x, y, 0.5, steps=20, generator=gen())
    assert (predictions(model, x_adv) != y).all()  # eps 0.5 breaks everything
    assert model.rows < 32 + correct * 21  # far fewer rows than without early stopping
    model.rows = 0
    x_full = apgd_ce_attack(model, x, y, 0.5, steps=20, generator=gen(), early_stop=False)
    assert model.rows == 32 + correct * 21
    assert (predictions(model, x_full) != y).all()


@pytest.mark.parametrize("name", ["apgd-ce", "apgd-dlr"])
def test_early_stopping_does_not_change_which_examples_break(name):
    model = CountingMLP(dtype=torch.float64)
    x, y = data(64, dtype=torch.float64)
    eps = 4 / 255
    fast = get(name)(model, x, y, eps, steps=15, generator=gen(5))
    full = get(name)(model, x, y, eps, steps=15, generator=gen(5), early_stop=False)
    broken_fast = predictions(model, fast) != y
    broken_full = predictions(model, full) != y
    assert 0 < int(broken_fast.sum()) < 64
    assert torch.equal(broken_fast, broken_full)


def test_apgd_maximises_the_loss_where_it_cannot_break():
    # For examples it cannot break, APGD returns its highest-loss iterate, which beats the
    # clean loss and a single FGSM-like step's.
    model = CountingMLP(dtype=torch.float64)
    x, y = data(64, dtype=torch.float64)
    eps = 1 / 255
    x_adv = apgd_ce_attack(model, x, y, eps, steps=30, generator=gen())
    keep = (predictions(model, x) == y) & (predictions(model, x_adv) == y)
    assert keep.sum() > 5
    with torch.no_grad():
        ce = nn.functional.cross_entropy
        adv_loss = ce(model(x_adv[keep]), y[keep], reduction="none")
        assert (adv_loss >= ce(model(x[keep]), y[keep], reduction="none")).all()


def test_apgd_dlr_on_bf16_runs():
    model = CountingMLP()
    x, y = data(8)
    x_adv = apgd_dlr_attack(model, x, y, EPS, steps=3, precision="bf16", generator=gen())
    assert x_adv.dtype == x.dtype and float((x_adv - x).abs().max()) <= EPS + 1e-6


# ---- FAB ----------------------------------------------------------------------------------------


def _h(lam, room, weight):
    return (weight * torch.minimum(room, lam[:, None])).sum(1)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    m=st.integers(1, 5),
    d=st.integers(1, 40),
    seed=st.integers(0, 2**31 - 1),
    zeros=st.booleans(),
)
def test_hyperplane_step_is_the_minimal_linf_step_in_the_box(m, d, seed, zeros):
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(m, d, generator=g, dtype=torch.float64)
    t = torch.where(torch.rand(m, d, generator=g, dtype=torch.float64) < 0.1, t.round(), t)
    w = torch.randn(m, d, generator=g, dtype=torch.float64)
    if zeros:
        w = torch.where(torch.rand(m, d, generator=g, dtype=torch.float64) < 0.3, 0.0, w)
    b = (w * torch.rand(m, d, generator=g, dtype=torch.float64)).sum(1) * 1.5
    delta = linf_hyperplane_step(t, w, b)
    p = t + delta
    assert (p >= -1e-12).all() and (p <= 1 + 1e-12).all()
    c = b - (w * t).sum(1)
    v = torch.where(c[:, None] >= 0, w, -w)
    room = torch.where(v > 0, 1 - t, t)
    reach = (v.abs() * room).sum(1)  # the most w·δ can change inside the box
    feasible = reach >= c.abs() * (1 + 1e-9)
    # Where the hyperplane meets the box, the point lies on it ...
    assert torch.allclose((w * p).sum(1)[feasible], b[feasible], atol=1e-9)
    # ... and no smaller ℓ∞ step reaches it: bisection on h(λ) = Σ|v_i| min(λ, room_i).
    lo = torch.zeros(m, dtype=torch.float64)
    hi = torch.ones(m, dtype=torch.float64)
    for _ in range(60):
        mid = (lo + hi) / 2
        enough = _h(mid, room, v.abs()) >= c.abs()
        hi = torch.where(enough, mid, hi)
        lo = torch.where(enough, lo, mid)
    norm = delta.abs().amax(1)
    assert torch.allclose(norm[feasible], hi[feasible], atol=1e-7)
    # Where it misses the box, every coordinate moves as far as the box allows toward it.
    if (~feasible).any():
        assert torch.allclose((w * delta).sum(1)[~feasible].abs(), reach[~feasible], atol=1e-9)


@pytest.mark.parametrize("passes", [1, fab._WATER_ITERATIONS])
def test_water_level_by_iteration_equals_the_sorted_solution(passes, monkeypatch):
    """The fixed-point water level is the one sorting gives, on FAB-sized rows with saturated
    coordinates, zero weights, rows the hyperplane misses and ``need = 0``; rows it has not
    settled within its passes (forced by allowing one) are handed to the sort."""
    g = torch.Generator().manual_seed(0)
    m, d = 64, 3072
    breaks = torch.rand(m, d, generator=g)
    breaks[:, :300] = 0.0  # coordinates already at their bound
    weights = torch.randn(m, d, generator=g).abs() * torch.rand(m, 1, generator=g)
    weights[:8, ::3] = 0.0
    reach = (weights * breaks).sum(1)
    need = reach * torch.rand(m, generator=g)
    need[-4:] = reach[-4:] * 1.5  # no λ suffices
    need[0] = 0.0
    sorted_rows = []
    solve_sorted = fab._water_level_sorted
    monkeypatch.setattr(fab, "_WATER_ITERATIONS", passes)
    monkeypatch.setattr(fab, "_water_level_sorted", lambda *a: sorted_rows.append(len(a[2])) or solve_sorted(*a))
    got = fab._water_level(breaks, weights, need)
    want = solve_sorted(breaks, weights, need)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
    assert float(got[0]) == 0.0 and torch.equal(got[-4:], breaks[-4:].amax(1))
    assert sum(sorted_rows) >= 4  # the infeasible rows at least
    assert sum(sorted_rows) < m if passes > 1 else sum(sorted_rows) > m // 2


def test_fab_finds_the_minimal_perturbation_of_a_linear_model():
    # Two classes, linear logits, images mid-range so the box never binds: the smallest ℓ∞
    # perturbation that flips example i is d_i = |f(x_i)| / ‖w_1 − w_0‖₁ exactly, and FAB's
    # first step lands on the boundary (times the 1.05 overshoot).
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(108, 2)).double()
    g = torch.Generator().manual_seed(0)
    x = 0.45 + 0.1 * torch.rand(12, 3, 6, 6, generator=g, dtype=torch.float64)
    with torch.no_grad():
        logits = model(x)
    y = logits.argmax(1)
    w = model[1].weight
    margin = (logits.gather(1, y[:, None]).squeeze(1) - logits.gather(1, 1 - y[:, None]).squeeze(1))
    dist = (margin / (w[1] - w[0]).abs().sum()).detach()
    assert float(dist.max()) < 0.3  # the box never binds
    for i in range(12):
        xi, yi = x[i : i + 1], y[i : i + 1]
        d = float(dist[i])
        below = fab_targeted_attack(model, xi, yi, 0.97 * d, n_target_classes=1, steps=20)
        assert predictions(model, below).item() == yi.item()  # nothing exists below d
        above = fab_targeted_attack(model, xi, yi, 1.08 * d, n_target_classes=1, steps=20)
        assert predictions(model, above).item() != yi.item()
        assert float((above - xi).abs().max()) <= 1.08 * d + 1e-9


def test_fab_result_respects_eps_on_a_cnn():
    model = CountingMLP()
    x, y = data(32)
    for eps in (0.0, 1 / 255, EPS, 0.1):
        x_adv = fab_targeted_attack(model, x, y, eps, steps=10, n_target_classes=4, restarts=2)
        assert float((x_adv - x).abs().max()) <= eps + 1e-6
        assert float(x_adv.min()) >= 0 and float(x_adv.max()) <= 1


# ---- AutoAttack -------------------------------------------------------------------------------


def test_plans():
    assert [n for n, _ in autoattack_plan("fast")] == ["apgd-ce", "apgd-dlr"]
    standard = autoattack_plan("standard")
    assert [n for n, _ in standard] == ["apgd-ce", "apgd-t", "fab-t", "square"]
    assert dict(standard)["square"] == {"queries": 5000, "p_init": 0.8}
    assert autoattack_plan("fast", steps=20) == [
        ("apgd-ce", {"steps": 20}),
        ("apgd-dlr", {"steps": 20}),
    ]
    custom = autoattack_plan(
        "custom",
        attacks={"apgd-ce": {"steps": 3}, "pgd": None},
        attack_kwargs={"pgd": {"steps": 2}},
    )
    assert custom == [("apgd-ce", {"steps": 3}), ("pgd", {"steps": 2})]
    assert autoattack_plan("custom", attacks=["apgd-t", ("fab-t", {"steps": 4})], steps=9) == [
        ("apgd-t", {"steps": 9}),
        ("fab-t", {"steps": 4}),
    ]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"version": "plus"}, "version must be one of"),
        ({"version": "custom"}, "needs attacks"),
        ({"version": "custom", "attacks": []}, "empty"),
        ({"version": "custom", "attacks": ["apgd-ce", "apgd-ce"]}, "once"),
        ({"version": "custom", "attacks": ["nope"]}, "unknown attack 'nope'"),
        ({"version": "custom", "attacks": ["autoattack"]}, "itself"),
        ({"version": "custom", "attacks": [3]}, "names"),
        ({"version": "fast", "attacks": ["apgd-ce"]}, "only used with version='custom'"),
        ({"version": "fast", "attack_kwargs": {"fab-t": {}}}, "does not use"),
        ({"version": "fast", "attack_kwargs": {"apgd-ce": {"stepz": 3}}}, "no option 'stepz'"),
        ({"version": "fast", "attack_kwargs": {"apgd-ce": {"generator": None}}}, "cannot be set"),
        ({"version": "fast", "attack_kwargs": {"apgd-ce": {"norm": "l2"}}}, "cannot be set"),
        ({"version": "fast", "steps": -1}, "steps"),
    ],
)
def test_plan_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        autoattack_plan(**kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"version": "fast", "attack_kwargs": {"apgd-ce": {"steps": 0}}}, "steps"),
        ({"version": "custom", "attacks": {"fab-t": {"eta": 0.5}}}, "eta"),
        ({"version": "custom", "attacks": ["apgd-ce", ("rays", {})]}, "rays.*linf.*only"),
        ({"version": "custom", "attacks": ["apgd-ce", ("apgd-t", {"n_target_classes": 5})]}, "n_target_classes=5"),
        ({"version": "rand", "attack_kwargs": {"apgd-ce": {"eot_iter": 0}}}, "eot_iter"),
    ],
)
def test_each_attack_checks_its_options_before_any_runs(kwargs, match):
    """Values are checked by the attacks themselves, all before the first attack runs (the
    model sees only the clean pass)."""
    model = CountingMLP()
    x, y = data(8)
    norm = "l2" if "rays" in match else "linf"
    with pytest.raises(ValueError, match=match):
        run_autoattack(model, x, y, 0.5 if norm == "l2" else EPS, norm=norm, **kwargs)
    assert model.calls <= 1


def test_standard_needs_square(monkeypatch):
    monkeypatch.delitem(ATTACKS._entries, "square", raising=False)
    with pytest.raises(ValueError, match="no attack named 'square' is registered"):
        autoattack_plan("standard")


def small_custom(**extra):
    return dict(
        version="custom",
        attacks={
            "apgd-ce": {"steps": 5},
            "apgd-t": {"steps": 5, "n_target_classes": 2},
            "fab-t": {"steps": 5, "n_target_classes": 2},
            "apgd-dlr": {"steps": 5},
        },
        **extra,
    )


# The masks come from forward passes over the attacked subsets, the checks below from one pass
# over the whole batch: float64 keeps a near-tie from flipping between the two batch shapes.


def test_run_autoattack_masks_and_result():
    model = CountingMLP(dtype=torch.float64)
    x, y = data(48, dtype=torch.float64)
    calls = []
    x_adv, masks = run_autoattack(model, x, y, 16 / 255, seed=0, **small_custom(),
                                  on_attack_done=lambda name, robust: calls.append((name, robust.clone())))
    assert list(masks) == ["clean", "apgd-ce", "apgd-t", "fab-t", "apgd-dlr"]
    assert [name for name, _ in calls] == list(masks)  # after the clean pass and each attack
    assert all(torch.equal(robust, masks[name]) for name, robust in calls)
    values = list(masks.values())
    for before, after in zip(values, values[1:]):
        assert not (after & ~before).any()  # robust sets only shrink
    assert torch.equal(values[-1], predictions(model, x_adv) == y)
    assert torch.equal(values[0], predictions(model, x) == y)
    assert values[0].sum() > values[-1].sum()
    assert float((x_adv - x).abs().max()) <= 16 / 255 + 1e-6
    acc = robust_accuracies(masks)
    assert list(acc) == list(masks) and acc["clean"] >= acc["apgd-dlr"]
    # Same seed, same result; a generator works too.
    x_again, masks_again = run_autoattack(model, x, y, 16 / 255, seed=0, **small_custom())
    assert torch.equal(x_adv, x_again)
    assert all(torch.equal(masks[k], masks_again[k]) for k in masks)
    a = get("autoattack")(model, x, y, 16 / 255, generator=gen(4), **small_custom())
    b = get("autoattack")(model, x, y, 16 / 255, generator=gen(4), **small_custom())
    assert torch.equal(a, b)


def test_run_autoattack_with_registered_attacks_and_batches():
    model = CountingMLP(dtype=torch.float64)
    x, y = data(40, dtype=torch.float64)
    x_adv, masks = run_autoattack(
        model, x, y, EPS, version="custom", attacks=["pgd", ("apgd-ce", {"steps": 4})],
        seed=1, batch_size=7,
    )  # fmt: skip
    assert list(masks) == ["clean", "pgd", "apgd-ce"]
    assert torch.equal(masks["apgd-ce"], predictions(model, x_adv) == y)
    assert float((x_adv - x).abs().max()) <= EPS + 1e-6


def test_run_autoattack_standard_with_few_classes_uses_fewer_targets():
    model = CountingMLP(5, dtype=torch.float64)
    x, y = data(24, dtype=torch.float64)
    x_adv, masks = run_autoattack(
        model, x, y, EPS, version="standard", seed=0,
        attack_kwargs={"square": {"queries": 20}}, steps=3,
    )  # fmt: skip
    assert list(masks) == ["clean", "apgd-ce", "apgd-t", "fab-t", "square"]
    assert torch.equal(masks["square"], predictions(model, x_adv) == y)
    with pytest.raises(ValueError, match="at least 4 classes"):
        run_autoattack(CountingMLP(3), *data(8, num_classes=3), EPS, version="standard", steps=2)


def test_run_autoattack_edge_cases():
    model = CountingMLP()
    x, y = data(6)
    x_adv, masks = run_autoattack(model, x, y, 0.0, version="fast", steps=2)
    assert torch.equal(x_adv, x)
    assert all(torch.equal(m, masks["clean"]) for m in masks.values())
    x_adv, masks = run_autoattack(model, x[:0], y[:0], EPS, version="fast")
    assert x_adv.shape == (0, 3, 6, 6) and masks["apgd-dlr"].shape == (0,)
    with pytest.raises(ValueError, match="seed"):
        run_autoattack(model, x, y, EPS, version="fast", seed=1.5)
    with pytest.raises(ValueError, match="batch_size"):
        run_autoattack(model, x, y, EPS, version="fast", batch_size=0)


@pytest.mark.parametrize("name", ["pgd", "apgd-ce", "apgd-dlr", "mifgsm", "cw-linf"])
def test_eot_on_a_deterministic_model_is_the_plain_attack(name):
    # The mean of identical gradients has the same sign: the same steps, bit for bit.
    model = CountingMLP(dtype=torch.float64)
    x, y = data(16, dtype=torch.float64)
    kwargs = {"steps": 5} | ({"generator": gen(2)} if name != "mifgsm" else {})
    plain = get(name)(model, x, y, EPS, **kwargs)
    kwargs = {"steps": 5} | ({"generator": gen(2)} if name != "mifgsm" else {})
    calls = model.calls
    eot = get(name)(model, x, y, EPS, eot_iter=3, **kwargs)
    assert torch.equal(plain, eot)
    with pytest.raises(ValueError, match="eot_iter"):
        get(name)(model, x, y, EPS, eot_iter=0)
    assert model.calls > calls  # it ran


def test_rand_version_is_apgd_with_eot_as_the_official_code():
    assert autoattack_plan("rand") == [("apgd-ce", {"eot_iter": 20}), ("apgd-dlr", {"eot_iter": 20})]
    assert autoattack_plan("rand", steps=10)[0][1] == {"eot_iter": 20, "steps": 10}
