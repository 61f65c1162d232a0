"""NoFrost* (Eq. 2) and the augmentation baselines: each loss against a hand computation on a
fixed batch, Eq. 2's per-example choice, and the options each method accepts."""

from __future__ import annotations

import pytest
import torch

from nofrost.config import ConfigError, MethodConfig, load_config
from nofrost.methods import StepContext, build_method
from nofrost.methods.augmented import deepaugment_choice
from nofrost.models import create_model


def hand_ce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean of -log softmax(logits)[y], written out."""
    logits = logits.double()
    return (torch.logsumexp(logits, 1) - logits[torch.arange(len(y)), y]).mean()


@pytest.fixture(scope="module")
def batch(request):
    from nofrost.data import load_dataset

    data = load_dataset("cifar10-mini", "test")
    x = data.images[:8].float() / 255
    return x, data.targets[:8]


def fixed_views(x):
    """Stand-ins with known values for each view: x* = x shifted, TDA = flipped, DA = 1 - x."""
    return (x + 4 / 255).clamp(0, 1), x.flip(-1), 1 - x


def setup(norm, method_name, x, fuse):
    torch.manual_seed(0)
    model = create_model("cifar_resnet10", num_classes=10, norm=norm, width=8).train()
    x_adv, x_tda, x_da = fixed_views(x)
    ctx = StepContext(attack=lambda m, xx, yy: x_adv, fuse_clean_adv=fuse, views={"tda": x_tda})
    method = build_method(MethodConfig(name=method_name))
    method.deepaugment = lambda images: 1 - images  # a known DeepAugment, to isolate the loss
    return model, method, ctx, (x_adv, x_tda, x_da)


def separate_logits(model, batches):
    """Each batch in its own forward, from the same starting state (batch norm: its own statistics)."""
    state = {k: v.clone() for k, v in model.state_dict().items()}
    out = []
    for b in batches:
        out.append(model(b))
    model.load_state_dict(state)
    return out


@pytest.mark.parametrize("norm, fuse", [("none", True), ("none", False), ("bn", False)])
@pytest.mark.parametrize("name", ["deepaugment", "tda", "combine", "nofrost-star"])
def test_loss_equals_the_hand_computation(name, norm, fuse, batch):
    x, y = batch
    model, method, ctx, (x_adv, x_tda, x_da) = setup(norm, name, x, fuse)
    torch.manual_seed(7)
    choice = deepaugment_choice(len(x))
    x_hat = torch.where(choice[:, None, None, None], x_da, x_tda)
    inputs = {
        "deepaugment": [x, x_da],
        "tda": [x, x_tda],
        "combine": [x, x_da, x_tda, x_adv],
        "nofrost-star": [x, x_hat, x_adv],
    }[name]
    with torch.no_grad():
        expected_logits = separate_logits(model, inputs)
    expected = sum(hand_ce(z, y) for z in expected_logits) / len(inputs)
    torch.manual_seed(7)  # the method draws Eq. 2's choice first
    out = method(model, x, y, ctx)
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-5)
    torch.testing.assert_close(out.logits_clean, expected_logits[0], atol=1e-4, rtol=1e-4)
    if name in ("combine", "nofrost-star"):
        torch.testing.assert_close(out.logits_adv, expected_logits[-1], atol=1e-4, rtol=1e-4)
    else:
        assert out.logits_adv is None
    out.loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_eq2_choice_is_half_on_average_and_follows_the_seed():
    torch.manual_seed(3)
    a = deepaugment_choice(20000)
    torch.manual_seed(3)
    b = deepaugment_choice(20000)
    torch.manual_seed(4)
    c = deepaugment_choice(20000)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.float().mean().item() == pytest.approx(0.5, abs=0.01)
    assert abs(a.float().mean() - c.float().mean()) < 0.02  # each seed about half


def test_nofrost_star_uses_the_drawn_choice_per_example(batch):
    x, y = batch
    model, method, ctx, (_, x_tda, x_da) = setup("none", "nofrost-star", x, True)
    seen = []
    ctx.attack = lambda m, xx, yy: xx
    real = model.forward

    def recording_forward(images):
        seen.append(images.detach().clone())
        return real(images)

    model.forward = recording_forward
    torch.manual_seed(11)
    choice = deepaugment_choice(len(x))
    torch.manual_seed(11)
    method(model, x, y, ctx)
    x_hat = seen[0][len(x) : 2 * len(x)]  # the fused pass: [x; x̂; x*]
    for i in range(len(x)):
        assert torch.equal(x_hat[i], x_da[i] if choice[i] else x_tda[i])
    assert 0 < choice.sum() < len(x)


def test_methods_leave_the_model_state_alone(batch):
    x, y = batch
    model, method, ctx, _ = setup("none", "nofrost-star", x, True)
    method.deepaugment = build_method(MethodConfig(name="deepaugment")).deepaugment  # the real Noise2Net
    before = {k: v.clone() for k, v in model.state_dict().items()}
    method(model, x, y, ctx)
    assert model.training and all(p.requires_grad for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_tda_view_missing_is_a_clear_error(batch):
    x, y = batch
    model, method, ctx, _ = setup("none", "tda", x, True)
    ctx.views = {}
    with pytest.raises(ValueError, match="needs the loader's 'tda' view"):
        method(model, x, y, ctx)


def test_methods_declare_their_views_and_variant():
    assert build_method(MethodConfig(name="tda")).views == ("tda",)
    assert build_method(MethodConfig(name="deepaugment")).views == ()
    star = build_method(MethodConfig(name="nofrost-star"))
    assert star.views == ("tda",) and star.config.deepaugment == "noise2net"
    assert "noise2net (weight-free)" in star.describe()


@pytest.mark.parametrize("override, message", [
    ("method.deepaugment=noise2net", "method 'tda' does not use method.deepaugment; it takes no method"),
    ("method.cae_weights=x.pt", "method 'tda' does not use method.cae_weights"),
])
def test_tda_refuses_deepaugment_options(override, message):
    config = load_config("cifar10-tda", overrides=[override])
    with pytest.raises(ValueError, match=message):
        build_method(config.method, config.attack)


@pytest.mark.parametrize("preset, override, error, message", [
    ("cifar10-nofrost-star", "method.lam=0.5", ValueError, "does not use method.lam; it takes method.deepaugment"),
    ("cifar10-combine", "method.deepaugment=edsr", ValueError, "variant 'edsr' needs method.edsr_weights"),
    ("cifar10-deepaugment", "method.deepaugment=vqvae", ConfigError, "method.deepaugment: must be one of noise2net"),
    ("cifar10-deepaugment", "method.noise2net_max_epsilon=0", ConfigError, "method.noise2net_max_epsilon: must be"),
])
def test_bad_augmentation_options_are_named(preset, override, error, message):
    with pytest.raises(error, match=message):
        config = load_config(preset, overrides=[override])
        build_method(config.method, config.attack)
