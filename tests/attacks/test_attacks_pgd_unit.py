"""PGD-specific tests on small synthetic models (fast; the real-data tests are elsewhere)."""

from __future__ import annotations

import inspect

import pytest
import torch
from torch import nn

from nofrost.attacks import default_step_size, get, pgd_attack, pgd_targeted_attack


class ModeRecorder(nn.Module):
    def __init__(self, num_classes: int = 4):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 6 * 6, 16), nn.ReLU())
        self.drop = nn.Dropout(0.0)
        self.head = nn.Linear(16, num_classes)
        self.seen: list[bool] = []

    def forward(self, x):
        self.seen.append(self.drop.training)
        return self.head(self.drop(self.net(x)))


def problem(n: int = 8, num_classes: int = 4):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(n, 3, 6, 6, generator=g)
    y = torch.randint(0, num_classes, (n,), generator=g)
    return ModeRecorder(num_classes), x, y


def test_registered_callables():
    assert get("pgd") is pgd_attack
    assert get("pgd-t") is pgd_targeted_attack


def test_default_step_size():
    assert default_step_size(8 / 255, 10) == pytest.approx(10 / 255 / 10)  # 1.25 eps
    assert default_step_size(32 / 255, 4) == pytest.approx(36 / 255 / 4)  # eps + 4/255
    assert default_step_size(0.0, 7) == 0.0


def test_train_mode_keeps_modes_during_the_attack():
    model, x, y = problem()
    model.train()
    pgd_attack(model, x, y, 4 / 255, steps=3)
    assert model.seen == [False] * 3
    assert model.training and model.drop.training
    model.seen.clear()
    pgd_attack(model, x, y, 4 / 255, steps=3, train_mode=True)
    assert model.seen == [True] * 3
    assert model.training and model.drop.training


def test_forward_calls_restarts_and_targets():
    model, x, y = problem()
    pgd_attack(model, x, y, 4 / 255, steps=4)
    assert len(model.seen) == 4  # no extra forward for restarts=1
    model.seen.clear()
    pgd_attack(model, x, y, 4 / 255, steps=4, num_classes=4, targeted=True)
    assert len(model.seen) == 4  # known num_classes: no clean forward for the random targets
    model.seen.clear()
    pgd_attack(model, x, y, 4 / 255, steps=4, targeted=True)
    assert len(model.seen) == 5  # one clean forward to learn num_classes


def test_without_random_start_is_deterministic():
    model, x, y = problem()
    a = pgd_attack(model, x, y, 4 / 255, random_start=False)
    b = pgd_attack(model, x, y, 4 / 255, random_start=False)
    assert torch.equal(a, b)


def test_explicit_target_is_approached():
    model, x, y = problem(n=64)
    target = (y + 1) % 4
    with torch.no_grad():
        clean_hit = (model(x).argmax(1) == target).float().mean()
    x_adv = pgd_attack(model, x, y, 0.25, steps=20, targeted=True, target=target)
    with torch.no_grad():
        adv_hit = (model(x_adv).argmax(1) == target).float().mean()
    assert adv_hit > clean_hit


def test_bf16_on_cpu_keeps_guarantees():
    model, x, y = problem()
    x_adv = pgd_attack(model, x, y, 8 / 255, precision="bf16")
    assert x_adv.dtype == torch.float32
    assert float((x_adv - x).abs().max()) <= 8 / 255 + 1e-6


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"steps": 0}, "steps must be a positive integer"),
        ({"steps": 2.0}, "steps must be a positive integer"),
        ({"steps": True}, "steps must be a positive integer"),
        ({"restarts": 0}, "restarts must be a positive integer"),
        ({"step_size": 0.0}, "step_size must be a positive number"),
        ({"step_size": -1 / 255}, "step_size must be a positive number"),
        ({"step_size": 2.0}, "2/255"),
        ({"precision": "fp16"}, "precision must be one of fp32, bf16"),
        ({"generator": 0}, "torch.Generator"),
        ({"num_classes": 1}, "at least 2"),
        ({"num_classes": 3}, "3 output classes"),  # y contains label 3
        ({"target": torch.zeros(8, dtype=torch.long)}, "targeted=True"),
        ({"targeted": True, "target": torch.zeros(7, dtype=torch.long)}, "7 labels"),
        ({"targeted": True, "target": torch.full((8,), 4)}, "target contains class"),
    ],
)
def test_invalid_kwargs(kwargs, match):
    model, x, y = problem()
    assert int(y.max()) == 3
    with pytest.raises(ValueError, match=match):
        pgd_attack(model, x, y, 8 / 255, **kwargs)


def test_model_output_checked():
    _, x, y = problem()
    with pytest.raises(ValueError, match="logits of shape"):
        pgd_attack(nn.Identity(), x, y, 8 / 255)
    with pytest.raises(ValueError, match="nn.Module"):
        pgd_attack(lambda t: t, x, y, 8 / 255)


def test_empty_batch():
    model, x, y = problem()
    out = pgd_attack(model, x[:0], y[:0], 8 / 255)
    assert out.shape == (0, 3, 6, 6)


def _count_host_syncs(monkeypatch) -> dict[str, int]:
    counts = {"n": 0}
    for name in ("item", "tolist", "__bool__", "__int__", "__float__", "__index__", "numpy"):
        original = getattr(torch.Tensor, name)

        def wrapper(self, *args, _original=original, **kwargs):
            counts["n"] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, wrapper)
    return counts


@pytest.mark.parametrize("name", ["pgd", "pgd-t"])
@pytest.mark.parametrize("restarts", [1, 2])
def test_no_host_sync_in_the_step_loop(monkeypatch, name, restarts):
    """Host synchronisations must not grow with the number of steps (the training hot loop)."""
    model, x, y = problem()
    counts = _count_host_syncs(monkeypatch)
    syncs = []
    for steps in (2, 9):
        counts["n"] = 0
        get(name)(model, x, y, 8 / 255, steps=steps, restarts=restarts)
        syncs.append(counts["n"])
    monkeypatch.undo()
    assert syncs[0] == syncs[1], f"host syncs grow with steps: {syncs}"
    assert syncs[0] <= 4 + restarts  # validation (x range, labels) + one per restart


class Linear2(nn.Module):
    """Two classes with logits (w·x, 0): the loss gradient of class 0 is a multiple of −w."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w, requires_grad=False)

    def forward(self, x):
        z = x.flatten(1) @ self.w.flatten()
        return torch.stack([z, torch.zeros_like(z)], dim=1)


def test_l2_steps_follow_the_normalised_gradient_and_project_onto_the_ball():
    """By hand: from x, one ℓ2 step of size α moves along −w/‖w‖₂ (ascending the CE of class 0
    lowers w·x); a second one leaves the ball of radius ε and is scaled back onto it."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(1, 3, 4, 4, generator=g)
    x = 0.25 + 0.5 * torch.rand(1, 3, 4, 4, generator=g)  # far from 0 and 1: no clipping
    y = torch.tensor([0])
    model = Linear2(w)
    direction = -w / w.norm()
    one = pgd_attack(model, x, y, 0.5, norm="l2", steps=1, step_size=0.2, random_start=False)
    torch.testing.assert_close(one, x + 0.2 * direction)
    two = pgd_attack(model, x, y, 0.3, norm="l2", steps=2, step_size=0.2, random_start=False)
    torch.testing.assert_close(two, x + 0.3 * direction)  # 0.4 along it, projected to 0.3
    assert default_step_size(0.5, 10, "l2") == pytest.approx(2.5 * 0.5 / 10)


def test_cw_and_mifgsm_are_pgd_with_options_fixed():
    """The registered variants run PGD itself: same points as PGD called with their options."""
    g = torch.Generator().manual_seed(0)
    model = Linear2(torch.randn(1, 3, 4, 4, generator=g))
    x = torch.rand(6, 3, 4, 4, generator=g)
    y = torch.randint(0, 2, (6,), generator=g)
    cw = get("cw-linf")(model, x, y, 8 / 255, generator=torch.Generator().manual_seed(1))
    same = pgd_attack(model, x, y, 8 / 255, steps=20, loss="cw", generator=torch.Generator().manual_seed(1))
    assert torch.equal(cw, same)
    mi = get("mifgsm")(model, x, y, 8 / 255, steps=7)
    assert torch.equal(mi, pgd_attack(model, x, y, 8 / 255, steps=7, decay=1.0, random_start=False, step_size="eps/steps"))
    assert "loss" not in inspect.signature(get("mifgsm")).parameters  # fixed options are gone


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"loss": "dlr"}, "loss must be one of ce, cw"),
        ({"loss": "cw", "targeted": True}, "'cw' loss is untargeted"),
        ({"step_size": "dong"}, "'pgd' for PGD's rule"),
        ({"decay": -1.0}, "decay"),
        ({"confidence": -1}, "confidence"),
    ],
)
def test_pgd_option_errors(kwargs, match):
    model = Linear2(torch.ones(1, 3, 4, 4))
    with pytest.raises(ValueError, match=match):
        pgd_attack(model, torch.rand(2, 3, 4, 4), torch.tensor([0, 1]), 8 / 255, **kwargs)
