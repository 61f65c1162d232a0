"""Mixture BN and MBNAT: routing, which statistics each step updates, γ interpolation."""

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from nofrost.attacks import pgd_attack
from nofrost.config import ConfigError, MethodConfig, load_config
from nofrost.methods import StepContext, build_method
from nofrost.models import create_model, find_normalization_layers, load_model, save_model
from nofrost.models.mbn import MixtureBatchNorm2d, interpolated, mbn_layers, mbn_route, mixed_layer_indices


def c_stats(model):
    return [t.clone() for m in mbn_layers(model) for t in (m.running_mean_c, m.running_var_c, m.num_batches_tracked_c)]


def a_stats(model):
    return [t.clone() for m in mbn_layers(model) for t in (m.running_mean_a, m.running_var_a, m.num_batches_tracked_a)]


def same(xs, ys):
    return all(torch.equal(a, b) for a, b in zip(xs, ys))


def randomize_branches(model, seed=0):
    """Make BN_c and BN_a differ (affine and statistics) so the paths are distinguishable."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in mbn_layers(model):
            m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=g))
            m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=g))
            for b in ("c", "a"):
                getattr(m, f"running_mean_{b}").copy_(0.1 * torch.randn(m.num_features, generator=g))
                getattr(m, f"running_var_{b}").copy_(0.5 + torch.rand(m.num_features, generator=g))
    return model


@pytest.fixture
def net():
    torch.manual_seed(0)
    return randomize_branches(create_model("cifar_resnet10", 10, norm="mbn", width=8)).eval()


@pytest.fixture
def x():
    torch.manual_seed(1)
    return torch.rand(6, 3, 32, 32)


class TwoLayer(nn.Module):
    """conv → MBN → relu → conv → MBN → pool → linear, small enough to compute by hand."""

    def __init__(self):
        super().__init__()
        self.conv1, self.mbn1 = nn.Conv2d(3, 4, 3, padding=1), MixtureBatchNorm2d(4)
        self.conv2, self.mbn2 = nn.Conv2d(4, 4, 3, padding=1), MixtureBatchNorm2d(4)
        self.fc = nn.Linear(4, 3)
        self.num_classes = 3

    def forward(self, x):
        h = self.conv2(F.relu(self.mbn1(self.conv1(x))))
        return self.fc(self.mbn2(h).mean((2, 3)))


def bn(m, h, branch):
    """A branch of an MBN layer in eval mode, computed from its buffers by hand."""
    c = m.num_features
    off = 0 if branch == "c" else c
    mean, var = getattr(m, f"running_mean_{branch}"), getattr(m, f"running_var_{branch}")
    w, b = m.weight[off:off + c], m.bias[off:off + c]
    return (h - mean.view(1, -1, 1, 1)) / torch.sqrt(var.view(1, -1, 1, 1) + m.eps) * w.view(1, -1, 1, 1) + b.view(1, -1, 1, 1)


def test_mbn_is_a_registered_norm_for_cifar_and_timm_resnets():
    model = create_model("cifar_resnet10", 10, norm="mbn", width=8)
    assert len(find_normalization_layers(model)) == 9 == len(mbn_layers(model))
    timm_net = create_model("resnet26", 10, norm="mbn")
    layers = mbn_layers(timm_net)
    assert len(layers) == 29
    # timm's zero_init_last zeroes the last norm of each residual branch: both paths of it
    zeroed = [m for m in layers if bool((m.weight == 0).all())]
    assert len(zeroed) == 8 and all(m.weight.ndim == 1 for m in layers)


def test_route_selects_the_branch_and_only_its_statistics():
    torch.manual_seed(0)
    m = MixtureBatchNorm2d(4).train()
    h = torch.randn(8, 4, 5, 5) * 3 + 1
    before_c, before_a = c_stats(nn.Sequential(m)), a_stats(nn.Sequential(m))
    with mbn_route(nn.Sequential(m), "clean"):
        out = m(h)
    assert torch.allclose(out, F.batch_norm(h, None, None, m.weight[:4], m.bias[:4], True), atol=1e-6)
    assert not same(c_stats(nn.Sequential(m)), before_c) and same(a_stats(nn.Sequential(m)), before_a)
    assert m.mode == "adv"  # restored: outside a route block the layer uses BN_a
    with pytest.raises(ValueError, match="'clean' or 'adv'"):
        with mbn_route(nn.Sequential(m), "both"):
            pass
    with pytest.raises(ValueError, match="norm 'mbn'"):
        with mbn_route(nn.Linear(2, 2), "clean"):
            pass


def recorder_attack(seen_modes):
    def attack(model, x, y):
        seen_modes.append({m.mode for m in mbn_layers(model)})
        return (x + 0.03 * torch.sign(torch.sin(13 * x))).clamp(0, 1)

    return attack


@pytest.mark.parametrize("lam", [0.0, 0.5, 1.0])
def test_mbnat_step_routes_clean_to_bn_c_and_adversarial_to_bn_a(lam):
    torch.manual_seed(0)
    model = create_model("cifar_resnet10", 10, norm="mbn", width=8).train()
    reference = copy.deepcopy(model)
    torch.manual_seed(1)
    x, y = torch.rand(8, 3, 32, 32), torch.randint(0, 10, (8,))
    seen = []
    method = build_method(MethodConfig(name="mbnat", lam=None if lam == 0.5 else lam))
    assert method.lam == lam
    c0, a0 = c_stats(model), a_stats(model)
    out = method(model, x, y, StepContext(attack=recorder_attack(seen)))

    # The attack ran on the BN_a path; a clean term updates BN_c only, an adversarial one BN_a only.
    assert seen == ([] if lam == 0 else [{"adv"}])
    assert same(c_stats(model), c0) == (lam == 1.0)
    assert same(a_stats(model), a0) == (lam == 0.0)
    # The loss is Eq. (1) with each batch through its own path (computed on an untouched copy).
    x_adv = (x + 0.03 * torch.sign(torch.sin(13 * x))).clamp(0, 1)
    with mbn_route(reference, "clean"):
        z_c = reference(x)
    with mbn_route(reference, "adv"):
        z_a = reference(x_adv)
    expected = (1 - lam) * F.cross_entropy(z_c, y) + lam * F.cross_entropy(z_a, y)
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-5)
    # ...and the statistics equal those of exactly one clean / one adversarial forward
    assert same(c_stats(model), c_stats(reference) if lam < 1 else c0)
    assert same(a_stats(model), a_stats(reference) if lam > 0 else a0)
    assert {m.mode for m in mbn_layers(model)} == {"adv"}


def test_mbnat_needs_an_mbn_model():
    method = build_method(MethodConfig(name="mbnat"))
    model = create_model("cifar_resnet10", 10, norm="bn", width=8)
    with pytest.raises(ValueError, match="model.norm=mbn"):
        method(model, torch.rand(2, 3, 32, 32), torch.tensor([0, 1]), StepContext(attack=recorder_attack([])))
    with pytest.raises(ConfigError, match="needs model.norm=mbn"):
        load_config("cifar10-sat", overrides=["method.name=mbnat"])


@pytest.mark.parametrize("mode", ["logits", "all", "random"])
def test_gamma_zero_and_one_are_exactly_the_single_path_networks(mode, net, x):
    with torch.no_grad():
        with mbn_route(net, "clean"):
            z_c = net(x)
        with mbn_route(net, "adv"):
            z_a = net(x)
        assert not torch.allclose(z_c, z_a)
        assert torch.equal(interpolated(net, 0.0, mode, p=50, seed=3)(x), z_c)
        assert torch.equal(interpolated(net, 1.0, mode, p=50, seed=3)(x), z_a)
        assert torch.equal(interpolated(net, 0, mode)(x), z_c)
    assert {m.mode for m in mbn_layers(net)} == {"adv"}  # the model's own routing is left alone


def test_logits_mode_interpolates_logits(net, x):
    with torch.no_grad():
        with mbn_route(net, "clean"):
            z_c = net(x)
        with mbn_route(net, "adv"):
            z_a = net(x)
        assert torch.allclose(interpolated(net, 0.3)(x), 0.7 * z_c + 0.3 * z_a, atol=1e-6)


def test_all_mode_mixes_every_layer_by_hand():
    torch.manual_seed(0)
    model = randomize_branches(TwoLayer()).eval()
    x = torch.rand(4, 3, 6, 6)
    g = 0.3
    with torch.no_grad():
        f1 = model.conv1(x)
        h = model.conv2(F.relu((1 - g) * bn(model.mbn1, f1, "c") + g * bn(model.mbn1, f1, "a")))
        by_hand = model.fc(((1 - g) * bn(model.mbn2, h, "c") + g * bn(model.mbn2, h, "a")).mean((2, 3)))
        assert torch.allclose(interpolated(model, g, "all")(x), by_hand, atol=1e-5)


@pytest.mark.parametrize("seed", range(4))
def test_random_mode_mixes_the_chosen_layers_and_keeps_two_streams_elsewhere(seed):
    torch.manual_seed(0)
    model = randomize_branches(TwoLayer()).eval()
    x = torch.rand(4, 3, 6, 6)
    g = 0.4
    chosen = mixed_layer_indices(2, 50, seed)
    assert len(chosen) == 1 and chosen == mixed_layer_indices(2, 50, seed)
    m1, m2 = model.mbn1, model.mbn2
    with torch.no_grad():
        f1 = model.conv1(x)
        if chosen == [0]:  # layer 1 merges the streams; layer 2 keeps BN_c / BN_a apart
            h = model.conv2(F.relu((1 - g) * bn(m1, f1, "c") + g * bn(m1, f1, "a")))
            z_c, z_a = model.fc(bn(m2, h, "c").mean((2, 3))), model.fc(bn(m2, h, "a").mean((2, 3)))
            by_hand = (1 - g) * z_c + g * z_a
        else:  # two streams up to layer 2, which merges them
            h_c = model.conv2(F.relu(bn(m1, f1, "c")))
            h_a = model.conv2(F.relu(bn(m1, f1, "a")))
            by_hand = model.fc(((1 - g) * bn(m2, h_c, "c") + g * bn(m2, h_a, "a")).mean((2, 3)))
        out = interpolated(model, g, "random", p=50, seed=seed)(x)
        assert torch.allclose(out, by_hand, atol=1e-5)


def test_random_mode_spans_logits_and_all(net, x):
    with torch.no_grad():
        assert torch.allclose(interpolated(net, 0.6, "random", p=0)(x), interpolated(net, 0.6, "logits")(x), atol=1e-5)
        assert torch.allclose(interpolated(net, 0.6, "random", p=100)(x), interpolated(net, 0.6, "all")(x), atol=1e-5)
    assert interpolated(net, 0.5, "random", p=30, seed=1).mixed_layers == interpolated(net, 0.5, "random", p=30, seed=1).mixed_layers
    assert len(interpolated(net, 0.5, "random", p=30, seed=1).mixed_layers) == 3  # round(0.3 · 9)


def test_attacks_go_white_box_through_the_interpolation(net, x):
    y = torch.arange(len(x)) % 10
    for mode in ("logits", "all", "random"):
        wrapped = interpolated(net, 0.5, mode)
        xg = x.clone().requires_grad_(True)
        F.cross_entropy(wrapped(xg), y).backward()
        assert xg.grad is not None and xg.grad.abs().sum() > 0
        flags = [p.requires_grad for p in wrapped.parameters()]
        x_adv = pgd_attack(wrapped, x, y, 8 / 255, steps=3)
        assert (x_adv - x).abs().max() <= 8 / 255 + 1e-6
        assert [p.requires_grad for p in wrapped.parameters()] == flags and not wrapped.training
        with torch.no_grad():
            assert F.cross_entropy(wrapped(x_adv), y) > F.cross_entropy(wrapped(x), y)


def test_interpolated_refuses_bad_arguments(net):
    with pytest.raises(ValueError, match="norm 'mbn'"):
        interpolated(create_model("cifar_resnet10", 10, norm="bn", width=8), 0.5)
    with pytest.raises(ValueError, match=r"gamma must be a number in \[0, 1\]"):
        interpolated(net, 1.5)
    with pytest.raises(ValueError, match="mode must be one of logits, all, random"):
        interpolated(net, 0.5, "average")
    with pytest.raises(ValueError, match="percentage"):
        interpolated(net, 0.5, "random", p=150)


def test_mbn_model_saves_and_loads_with_both_paths(net, x, tmp_path):
    save_model(net, tmp_path / "run")
    loaded = load_model(tmp_path / "run")
    with torch.no_grad():
        for route in ("clean", "adv"):
            with mbn_route(net, route), mbn_route(loaded, route):
                assert torch.equal(loaded(x), net(x))
        assert torch.equal(interpolated(loaded, 0.3, "all")(x), interpolated(net, 0.3, "all")(x))
