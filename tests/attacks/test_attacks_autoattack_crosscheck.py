"""APGD / AutoAttack against the official AutoAttack code on a real adversarially trained model.

The model is ``tests/assets/cifar_resnet10_sat_bn`` (a cifar_resnet10 trained by this project's
trainer with SAT: ~39% clean, ~23% PGD-20 at ε = 8/255), the images 200 stratified test images
of cifar10-mini. Ours and ``pyautoattack`` (the authors' code) run with the same, reduced
budgets (fewer steps, targets and queries than standard AutoAttack, to keep this file within
about a minute on one thread); their robust accuracies must agree within 2 percentage points.
Every robust accuracy is measured by our own forward pass on the returned points, after
checking that they lie in the ε-ball.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import nofrost
from nofrost.attacks import ATTACKS, get
from nofrost.attacks.autoattack import run_autoattack
from nofrost.data import load_dataset, stratified_subset

pyautoattack = pytest.importorskip("pyautoattack")
from pyautoattack import AutoAttack  # noqa: E402
from pyautoattack.autopgd_base import APGDAttack, APGDAttack_targeted  # noqa: E402
from pyautoattack.fab_pt import FABAttack_PT  # noqa: E402
from pyautoattack.square import SquareAttack  # noqa: E402

ASSET = Path(__file__).resolve().parents[1] / "assets" / "cifar_resnet10_sat_bn"
N = 200
EPS = 8 / 255
EPS_L2 = 0.5  # RobustBench's CIFAR-10 ℓ2 radius
TOLERANCE = 0.02  # robust accuracy, as a fraction of the N images
# AutoAttack decides "broken" by forward passes over the still-robust subsets; the check below
# passes the whole batch at once. Other batch shapes run other float reductions, which can flip
# a near-tie prediction, so the two counts may differ by an example or two.
NEAR_TIES = 2
STEPS = 20  # APGD / FAB iterations on both sides (standard AutoAttack: 100)
TARGETS = 3  # APGD-T / FAB-T targets on both sides (standard: 9)
QUERIES = 200  # Square queries on both sides (standard: 5000)


@pytest.fixture(scope="module")
def real():
    model = nofrost.load_model(ASSET)
    data = stratified_subset(load_dataset("cifar10-mini", "test"), N)
    return model, data.images.float() / 255, data.targets


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def robust_accuracy(model, x, x_adv, y, norm: str = "linf") -> float:
    x_adv = x_adv.detach()
    if norm == "linf":
        assert float((x_adv - x).abs().max()) <= EPS + 1e-6
    else:
        assert float((x_adv - x).flatten(1).norm(dim=1).max()) <= EPS_L2 * (1 + 1e-5)
    assert float(x_adv.min()) >= 0 and float(x_adv.max()) <= 1
    with torch.no_grad():
        return float((model(x_adv).argmax(1) == y).float().mean())


def official_apgd(model, loss: str, norm: str = "Linf") -> APGDAttack:
    return APGDAttack(
        model, n_iter=STEPS, norm=norm, n_restarts=1, eps=EPS if norm == "Linf" else EPS_L2, seed=0,
        loss=loss, rho=0.75, device="cpu",
    )  # fmt: skip


def run_official(adversary: AutoAttack, x, y):
    adversary.logger.disabled = True
    with torch.random.fork_rng():  # the official code seeds the global RNG
        x_adv, _ = adversary.run_standard_evaluation(x, y, batch_size=N)
    return x_adv


@pytest.mark.parametrize("loss", ["ce", "dlr"])
def test_apgd_agrees_with_the_official_code(real, loss):
    model, x, y = real
    with torch.no_grad():
        clean = float((model(x).argmax(1) == y).float().mean())
    assert 0.3 < clean < 0.5  # the asset is the model we think it is
    x_ours = get(f"apgd-{loss}")(model, x, y, EPS, steps=STEPS, generator=seeded(0))
    ours = robust_accuracy(model, x, x_ours, y)
    with torch.random.fork_rng():
        official = robust_accuracy(model, x, official_apgd(model, loss).perturb(x, y), y)
    print(f"apgd-{loss}: ours {ours:.3f} official {official:.3f} (clean {clean:.3f})")
    assert abs(ours - official) <= TOLERANCE + 1e-9
    assert ours < clean - 0.05  # it is an attack


@pytest.mark.parametrize("loss", ["ce", "dlr"])
def test_l2_apgd_agrees_with_the_official_code(real, loss):
    model, x, y = real
    x_ours = get(f"apgd-{loss}")(model, x, y, EPS_L2, norm="l2", steps=STEPS, generator=seeded(0))
    ours = robust_accuracy(model, x, x_ours, y, "l2")
    with torch.random.fork_rng():
        x_official = official_apgd(model, loss, "L2").perturb(x, y)
    official = robust_accuracy(model, x, x_official, y, "l2")
    with torch.no_grad():
        clean = float((model(x).argmax(1) == y).float().mean())
    print(f"l2 apgd-{loss}: ours {ours:.3f} official {official:.3f} (clean {clean:.3f})")
    assert abs(ours - official) <= TOLERANCE + 1e-9
    assert ours < clean - 0.05


def test_l2_apgd_t_agrees_with_the_official_code(real):
    model, x, y = real
    x_ours = get("apgd-t")(model, x, y, EPS_L2, norm="l2", steps=STEPS, n_target_classes=TARGETS,
                           generator=seeded(0))  # fmt: skip
    ours = robust_accuracy(model, x, x_ours, y, "l2")
    official_attack = APGDAttack_targeted(
        model, n_iter=STEPS, norm="L2", n_restarts=1, eps=EPS_L2, seed=0, rho=0.75,
        n_target_classes=TARGETS, device="cpu",
    )  # fmt: skip
    with torch.random.fork_rng():
        official = robust_accuracy(model, x, official_attack.perturb(x, y), y, "l2")
    print(f"l2 apgd-t: ours {ours:.3f} official {official:.3f}")
    assert abs(ours - official) <= TOLERANCE + 1e-9


def test_l2_autoattack_fast_agrees_with_the_official_code(real):
    model, x, y = real
    x_ours, _ = run_autoattack(model, x, y, EPS_L2, version="fast", steps=STEPS, seed=0, norm="l2")
    ours = robust_accuracy(model, x, x_ours, y, "l2")
    adversary = AutoAttack(model, norm="L2", attacks=["apgd-ce", "apgd-dlr"], version="custom", eps=EPS_L2,
                           seed=0, device="cpu")  # fmt: skip
    adversary.apgd = official_apgd(model, "ce", "L2")
    official = robust_accuracy(model, x, run_official(adversary, x, y), y, "l2")
    print(f"l2 autoattack fast: ours {ours:.3f} official {official:.3f}")
    assert abs(ours - official) <= TOLERANCE + 1e-9


def test_autoattack_fast_agrees_with_the_official_code(real):
    model, x, y = real
    x_ours, masks = run_autoattack(model, x, y, EPS, version="fast", steps=STEPS, seed=0)
    ours = robust_accuracy(model, x, x_ours, y)
    assert abs(ours * N - int(masks["apgd-dlr"].sum())) <= NEAR_TIES
    adversary = AutoAttack(model, attacks=["apgd-ce", "apgd-dlr"], version="custom", eps=EPS,
                           seed=0, device="cpu")  # fmt: skip
    adversary.apgd = official_apgd(model, "ce")
    official = robust_accuracy(model, x, run_official(adversary, x, y), y)
    print(f"autoattack fast: ours {ours:.3f} official {official:.3f}")
    assert abs(ours - official) <= TOLERANCE + 1e-9


@pytest.mark.skipif("square" not in ATTACKS, reason="the 'square' attack is not registered yet")
def test_autoattack_standard_agrees_with_the_official_code(real):
    model, x, y = real
    x_ours, masks = run_autoattack(
        model, x, y, EPS, version="standard", steps=STEPS, seed=0,
        attack_kwargs={
            "apgd-t": {"n_target_classes": TARGETS},
            "fab-t": {"n_target_classes": TARGETS},
            "square": {"queries": QUERIES},
        },
    )  # fmt: skip
    ours = robust_accuracy(model, x, x_ours, y)
    adversary = AutoAttack(model, version="standard", eps=EPS, seed=0, device="cpu")
    adversary.apgd = official_apgd(model, "ce")
    adversary.apgd_targeted = APGDAttack_targeted(
        model, n_iter=STEPS, norm="Linf", n_restarts=1, eps=EPS, seed=0, rho=0.75,
        n_target_classes=TARGETS, device="cpu",
    )  # fmt: skip
    adversary.fab = FABAttack_PT(model, n_restarts=1, n_iter=STEPS, eps=EPS, seed=0,
                                 norm="Linf", n_target_classes=TARGETS, device="cpu")  # fmt: skip
    # Our Square rescales its p schedule to the query budget; so does this one.
    adversary.square = SquareAttack(
        model, p_init=0.8, n_queries=QUERIES, eps=EPS, norm="Linf", n_restarts=1, seed=0,
        device="cpu", resc_schedule=True,
    )  # fmt: skip
    official = robust_accuracy(model, x, run_official(adversary, x, y), y)
    after = {k: round(float(v.float().mean()), 3) for k, v in masks.items()}
    print(f"autoattack standard: ours {ours:.3f} official {official:.3f}; ours per attack {after}")
    assert abs(ours - official) <= TOLERANCE + 1e-9


def test_l2_autoattack_standard_agrees_with_the_official_code(real):
    """All four attacks of standard AutoAttack under ℓ2, with the reduced budgets above."""
    model, x, y = real
    x_ours, masks = run_autoattack(
        model, x, y, EPS_L2, version="standard", steps=STEPS, seed=0, norm="l2",
        attack_kwargs={
            "apgd-t": {"n_target_classes": TARGETS},
            "fab-t": {"n_target_classes": TARGETS},
            "square": {"queries": QUERIES},
        },
    )  # fmt: skip
    ours = robust_accuracy(model, x, x_ours, y, "l2")
    adversary = AutoAttack(model, norm="L2", version="standard", eps=EPS_L2, seed=0, device="cpu")
    adversary.apgd = official_apgd(model, "ce", "L2")
    adversary.apgd_targeted = APGDAttack_targeted(
        model, n_iter=STEPS, norm="L2", n_restarts=1, eps=EPS_L2, seed=0, rho=0.75,
        n_target_classes=TARGETS, device="cpu",
    )  # fmt: skip
    adversary.fab = FABAttack_PT(model, n_restarts=1, n_iter=STEPS, eps=EPS_L2, seed=0,
                                 norm="L2", n_target_classes=TARGETS, device="cpu")  # fmt: skip
    adversary.square = SquareAttack(
        model, p_init=0.8, n_queries=QUERIES, eps=EPS_L2, norm="L2", n_restarts=1, seed=0,
        device="cpu", resc_schedule=True,
    )  # fmt: skip
    official = robust_accuracy(model, x, run_official(adversary, x, y), y, "l2")
    after = {k: round(float(v.float().mean()), 3) for k, v in masks.items()}
    print(f"l2 autoattack standard: ours {ours:.3f} official {official:.3f}; ours per attack {after}")
    assert abs(ours - official) <= TOLERANCE + 1e-9
    assert ours < after["clean"] - 0.05


def test_more_apgd_steps_are_not_weaker(real):
    model, x, y = real
    accs = []
    for steps in (5, 25):
        x_adv = get("apgd-ce")(model, x, y, EPS, steps=steps, generator=seeded(1))
        accs.append(robust_accuracy(model, x, x_adv, y))
    assert accs[1] <= accs[0]


def test_fab_t_breaks_within_eps_only(real):
    # Every example FAB-T "breaks" is misclassified at a point within ε, and FAB-T breaks some.
    model, x, y = real
    x_adv = get("fab-t")(model, x, y, EPS, steps=STEPS, n_target_classes=TARGETS)
    with torch.no_grad():
        clean = float((model(x).argmax(1) == y).float().mean())
    assert robust_accuracy(model, x, x_adv, y) < clean - 0.05


class NoisyInput(torch.nn.Module):
    """A randomized model: Gaussian noise (σ = 8/255) on the input before the real model."""

    def __init__(self, base: torch.nn.Module):
        super().__init__()
        self.base = base

    def forward(self, x):
        return self.base((x + (8 / 255) * torch.randn_like(x)).clamp(0, 1))


def test_rand_version_with_eot_agrees_with_the_official_code(real):
    # Both sides: APGD-CE then APGD-DLR, 10 steps, gradients averaged over 4 draws per step.
    base, x, y = real
    model = NoisyInput(base).eval()
    n, eot, steps = 100, 4, 10
    x, y = x[:n], y[:n]

    def noisy_accuracy(x_adv):
        with torch.random.fork_rng():
            torch.manual_seed(0)  # the same noise draws for both sides' points
            return robust_accuracy(model, x[:n], x_adv, y)

    with torch.random.fork_rng():
        torch.manual_seed(1)
        x_ours, _ = run_autoattack(model, x, y, EPS, version="rand", steps=steps, seed=0,
                                   attack_kwargs={"apgd-ce": {"eot_iter": eot}, "apgd-dlr": {"eot_iter": eot}})
    adversary = AutoAttack(model, version="rand", eps=EPS, seed=0, device="cpu")
    adversary.apgd.n_iter, adversary.apgd.eot_iter = steps, eot
    adversary.logger.disabled = True
    with torch.random.fork_rng():
        x_official, _ = adversary.run_standard_evaluation(x, y, batch_size=n)
    ours, official = noisy_accuracy(x_ours), noisy_accuracy(x_official)
    print(f"autoattack rand (EOT {eot}, {steps} steps): ours {ours:.3f} official {official:.3f}")
    assert abs(ours - official) <= 2 * TOLERANCE + 1e-9  # the noisy model's own randomness adds spread
    assert ours < noisy_accuracy(x) - 0.05  # it is an attack


