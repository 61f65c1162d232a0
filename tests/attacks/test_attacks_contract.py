"""Contract tests run over EVERY registered attack (``list_attacks()``).

A new attack module is covered automatically: output shape/dtype/range/ε-ball, model state
restored (also when the model raises mid-attack), and the up-front validation every attack
must do.
"""

from __future__ import annotations

import inspect

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from nofrost.attacks import attack_info, get, list_attacks

ATTACK_NAMES = list_attacks()
L2_NAMES = [name for name in ATTACK_NAMES if "l2" in attack_info(name).norms]
LINF_ONLY = [name for name in ATTACK_NAMES if attack_info(name).norms == ("linf",)]

# Options for attacks whose defaults are needlessly slow on these tiny problems, and the fewest
# classes an attack accepts (DLR needs 3, targeted DLR 4); the others run with their defaults.
CONTRACT_KWARGS: dict[str, dict] = {
    "apgd-t": {"steps": 10, "n_target_classes": 2},
    "fab-t": {"steps": 10, "n_target_classes": 1},
    "square": {"queries": 200},  # default 5000: ~35 s here on 1 thread
    "rays": {"queries": 300},  # default 10000: ~50 s here on 1 thread
    "autoattack": {
        "steps": 5,
        "attack_kwargs": {
            "apgd-t": {"n_target_classes": 2},
            "fab-t": {"n_target_classes": 2},
            "square": {"queries": 50},
        },
    },
}
MIN_CLASSES: dict[str, int] = {"apgd-dlr": 3, "apgd-t": 4, "autoattack": 4}


class Boom(RuntimeError):
    """Raised by the model on purpose."""


class MixedModel(nn.Module):
    """A small CNN with deliberately mixed train/eval modes and frozen parameters.

    Records the mode of every submodule during each forward pass, and can raise on the k-th
    forward call to check that attacks restore the model's state on errors.
    """

    def __init__(self, channels: int, num_classes: int, fail_on_call: int | None = None):
        super().__init__()
        self.stem = nn.Conv2d(channels, 4, 3, padding=1)
        self.block = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.Dropout(0.2))
        self.norm = nn.BatchNorm2d(4)
        self.frozen = nn.Linear(4, 4)
        self.head = nn.Linear(4, num_classes)
        self.fail_on_call = fail_on_call
        self.calls = 0
        self.modes_seen: list[list[bool]] = []
        # Mixed flags: model in train mode, but the norm layer in eval; the block in eval, but
        # its dropout in train; some parameters frozen.
        self.train()
        self.norm.eval()
        self.block.eval()
        self.block[2].train()
        self.frozen.requires_grad_(False)
        self.stem.bias.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.modes_seen.append([m.training for m in self.modules()])
        if self.fail_on_call is not None and self.calls == self.fail_on_call:
            raise Boom(f"forward call {self.calls}")
        h = self.norm(self.block(torch.relu(self.stem(x))))
        h = h.mean(dim=(2, 3))
        return self.head(torch.relu(self.frozen(h)))


def snapshot(model: nn.Module) -> dict:
    return {
        "params": {k: p.detach().clone() for k, p in model.named_parameters()},
        "requires_grad": {k: p.requires_grad for k, p in model.named_parameters()},
        "training": {k: m.training for k, m in model.named_modules()},
        "grads": {k: p.grad for k, p in model.named_parameters()},
    }


def assert_state_restored(model: nn.Module, before: dict) -> None:
    after = snapshot(model)
    for k, p in before["params"].items():
        assert torch.equal(after["params"][k], p), f"parameter {k} changed"
    assert after["requires_grad"] == before["requires_grad"]
    assert after["training"] == before["training"]
    assert all(g is None for g in after["grads"].values()), "attack wrote parameter .grad"


@st.composite
def attack_inputs(draw):
    n = draw(st.integers(1, 4))
    c = draw(st.sampled_from([1, 3]))
    h = draw(st.integers(4, 9))
    w = draw(st.integers(4, 9))
    k = draw(st.integers(2, 6))
    eps = draw(st.floats(0.0, 16 / 255, allow_nan=False))
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, c, h, w, generator=g, dtype=dtype)
    # Put exact 0s and 1s in to exercise the [0, 1] clamp at the ball's edges.
    edge = torch.rand(n, c, h, w, generator=g)
    x = torch.where(edge < 0.15, torch.zeros_like(x), x)
    x = torch.where(edge > 0.85, torch.ones_like(x), x)
    y = torch.randint(0, k, (n,), generator=g)
    return x, y, eps, k, seed


def make_model(channels: int, num_classes: int, dtype: torch.dtype, seed: int, fail_on_call=None):
    torch.manual_seed(seed)
    return MixedModel(channels, num_classes, fail_on_call).to(dtype)


SETTINGS = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)


@pytest.mark.parametrize("name", ATTACK_NAMES)
@SETTINGS
@given(inputs=attack_inputs())
def test_output_guarantees_and_state_restored(name, inputs):
    x, y, eps, k, seed = inputs
    k = max(k, MIN_CLASSES.get(name, 2))
    model = make_model(x.shape[1], k, x.dtype, seed)
    x_before = x.clone()
    before = snapshot(model)

    x_adv = get(name)(model, x, y, eps, **CONTRACT_KWARGS.get(name, {}))

    assert x_adv.shape == x.shape
    assert x_adv.dtype == x.dtype
    assert x_adv.device == x.device
    assert not x_adv.requires_grad
    assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
    assert float((x_adv - x).abs().max()) <= eps + 1e-6
    assert torch.equal(x, x_before), "attack modified its input in place"
    if eps == 0:
        assert torch.equal(x_adv, x)
    assert_state_restored(model, before)
    # Default attack state: every submodule in eval mode during every forward pass.
    assert model.modes_seen and all(not any(modes) for modes in model.modes_seen)


@st.composite
def l2_inputs(draw):
    x, y, _, k, seed = draw(attack_inputs())
    eps = draw(st.sampled_from([0.0, 0.05, 0.5, 2.0]))
    return x, y, eps, k, seed


@pytest.mark.parametrize("name", L2_NAMES)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(inputs=l2_inputs())
def test_l2_output_guarantees_and_state_restored(name, inputs):
    """Under ℓ2 the result lies in the ℓ2 ε-ball of each image (up to one rounding) and [0, 1]."""
    x, y, eps, k, seed = inputs
    k = max(k, MIN_CLASSES.get(name, 2))
    model = make_model(x.shape[1], k, x.dtype, seed)
    before = snapshot(model)

    x_adv = get(name)(model, x, y, eps, norm="l2", **CONTRACT_KWARGS.get(name, {}))

    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype and not x_adv.requires_grad
    assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
    distance = (x_adv - x).flatten(1).norm(dim=1)
    assert float(distance.max()) <= eps * (1 + 1e-5) + 1e-7
    if eps == 0:
        assert torch.equal(x_adv, x)
    assert_state_restored(model, before)
    assert model.modes_seen and all(not any(modes) for modes in model.modes_seen)


def test_l2_moves_more_than_linf_allows():
    """An ℓ2 attack is not an ℓ∞ one: at ε = 1 single pixels move by more than 8/255."""
    model, x, y = _small_problem()
    x_adv = get("pgd")(model, x, y, 1.0, norm="l2", steps=20, generator=torch.Generator().manual_seed(0))
    assert float((x_adv - x).abs().max()) > 8 / 255
    assert float((x_adv - x).flatten(1).norm(dim=1).max()) <= 1.0 + 1e-5


@pytest.mark.parametrize("name", ATTACK_NAMES)
def test_every_attack_takes_a_norm_and_refuses_the_ones_it_lacks(name):
    model, x, y = _small_problem()
    assert "norm" in inspect.signature(get(name)).parameters
    with pytest.raises(ValueError, match="norm must be one of linf, l2"):
        get(name)(model, x, y, 8 / 255, norm="l1")
    if name in LINF_ONLY:
        with pytest.raises(ValueError, match=f"{name}.*linf threat model only"):
            get(name)(model, x, y, 0.5, norm="l2")


@pytest.mark.parametrize("name", L2_NAMES)
def test_l2_eps_beyond_the_image_diameter_is_refused(name):
    model, x, y = _small_problem()  # 3x6x6 images: diameter √108 ≈ 10.4
    with pytest.raises(ValueError, match=r"diameter.*128/255"):
        get(name)(model, x, y, 128, norm="l2")
    with pytest.raises(ValueError, match=r">= 0"):
        get(name)(model, x, y, -0.5, norm="l2")


@pytest.mark.parametrize("name", ATTACK_NAMES)
@pytest.mark.parametrize("fail_on_call", [1, 2, 3])
def test_state_restored_when_model_raises(name, fail_on_call):
    g = torch.Generator().manual_seed(fail_on_call)
    x = torch.rand(3, 3, 6, 6, generator=g)
    y = torch.tensor([0, 1, 2])
    model = make_model(3, 4, torch.float32, 0, fail_on_call=fail_on_call)
    before = snapshot(model)
    try:
        get(name)(model, x, y, 8 / 255, **CONTRACT_KWARGS.get(name, {}))
    except Boom:
        pass
    else:
        # Only acceptable if the attack never reached that forward call.
        assert model.calls < fail_on_call, f"{name} swallowed the model's exception"
    if fail_on_call == 1:
        assert model.calls >= 1, f"{name} never called the model"
    assert_state_restored(model, before)


# --- validation every attack must do ---------------------------------------------------------


def _small_problem():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 6, 6, generator=g)
    y = torch.tensor([0, 1, 2, 3])
    return make_model(3, 4, torch.float32, 0), x, y


@pytest.mark.parametrize("name", ATTACK_NAMES)
@pytest.mark.parametrize(
    "eps, match",
    [
        (8, "8/255"),
        (255.0, "255/255"),
        (-0.1, r"\[0, 1\]"),
        (float("nan"), r"\[0, 1\]"),
        ("8/255", "number"),
        (torch.tensor(0.03), "number"),
    ],
)
def test_invalid_eps(name, eps, match):
    model, x, y = _small_problem()
    before = snapshot(model)
    with pytest.raises(ValueError, match=match):
        get(name)(model, x, y, eps)
    assert_state_restored(model, before)


@pytest.mark.parametrize("name", ATTACK_NAMES)
@pytest.mark.parametrize(
    "make_x, match",
    [
        (lambda x: x * 255, r"\[0, 1\] images"),
        (lambda x: (x - 0.5) / 0.25, r"\[0, 1\] images"),
        (lambda x: (x * 255).to(torch.uint8), "float"),
        (lambda x: x[0], r"\(N, C, H, W\)"),
        (lambda x: x.masked_fill(x > 0.9, float("nan")), "NaN"),
        (lambda x: x.numpy(), "torch.Tensor"),
    ],
)
def test_invalid_images(name, make_x, match):
    model, x, y = _small_problem()
    with pytest.raises(ValueError, match=match):
        get(name)(model, make_x(x), y, 8 / 255)


@pytest.mark.parametrize("name", ATTACK_NAMES)
@pytest.mark.parametrize(
    "make_y, match",
    [
        (lambda y: y[:, None], r"shape \(N,\)"),
        (lambda y: y[:3], "3 labels but x has 4 images"),
        (lambda y: y.float(), "int64"),
        (lambda y: y.int(), "int64"),
        (lambda y: y + 1, r"4 output classes"),  # label 4 with a 4-class model
        (lambda y: y - 1, r"4 output classes"),  # label -1
    ],
)
def test_invalid_labels(name, make_y, match):
    model, x, y = _small_problem()
    before = snapshot(model)
    with pytest.raises(ValueError, match=match):
        get(name)(model, x, make_y(y), 8 / 255)
    assert_state_restored(model, before)


def test_registry_lookup():
    assert {"pgd", "pgd-t"} <= set(ATTACK_NAMES)
    assert ATTACK_NAMES == sorted(ATTACK_NAMES)
    with pytest.raises(ValueError, match="pgd"):
        get("no-such-attack")
