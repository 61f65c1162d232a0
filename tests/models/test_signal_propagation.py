"""Signal propagation at initialization (Brock et al., 2021a): the NF-ResNet is faithful to timm.

The CIFAR NF-ResNet is initialized as timm's ``nf_resnet*`` (the models NoFrost trained), and
each of timm's three choices has a test here that fails without it:

- the last convolution of every residual branch starts with gain 0, so each block is exactly
  its shortcut at initialization;
- the stem is a Scaled-WS convolution with the ReLU gain gamma = 1.7139, so N(0, 1) images
  leave it with variance about gamma^2 (about 1 with gamma = 1);
- the transition shortcut average-pools 2x2 before its 1x1 convolution, so every input pixel
  reaches it, and a spatially uncorrelated stream loses about 3/4 of its variance there (a
  strided 1x1 convolution reads one pixel in four and keeps the variance).

The alpha/beta bookkeeping is what the residual branches add at full strength, so those tests
first switch the branches on (last-conv gains 1, ``branches_at_full_strength``) and measure
the residual stream after every block: the mean over channels of the squared per-channel mean
(mean shift) and of the per-channel variance. Within a stage each block adds about alpha^2
times the stage's scale, and the mean shift stays small. The same checks fail for an ablated
network with plain (He-initialized) convolutions instead of Scaled WS: its mean shift
explodes, as in Fig. 2 of the paper. The network is positively homogeneous at
initialization, so the stream is compared with the analytic variance times a per-stage scale
(the stem's variance, changed at each transition by the average pooling).
"""

from __future__ import annotations

import pytest
import torch

from nofrost.models import CifarResNet, CifarResNetConfig, ImageClassifier, create_model
from nofrost.models.nf_layers import RELU_GAMMA
from nofrost.models.normalize import CIFAR10_MEAN, CIFAR10_STD
from nofrost.models.signal import StreamStats, residual_stream_stats


def branches_at_full_strength(model: ImageClassifier) -> ImageClassifier:
    """Set every residual branch's last-conv gain to 1 (timm starts them at 0)."""
    with torch.no_grad():
        for block in model.net.blocks():
            block.conv2.gain.fill_(1.0)
    return model


def signal_problems(stats: list[StreamStats], alpha: float) -> list[str]:
    """Deviations from the NF-ResNet signal propagation pattern (empty if faithful)."""
    problems = []
    a2 = alpha**2
    scale = stats[0].var / stats[0].expected_var
    for prev, cur in zip(stats[:-1], stats[1:]):
        if cur.transition:
            scale = cur.var / cur.expected_var  # average pooling rescales the stream (checked elsewhere)
        elif not 0.25 <= (growth := (cur.var - prev.var) / (scale * a2)) <= 1.75:
            problems.append(f"{cur.name}: variance grew by {growth:.2f} alpha^2 x the stage's scale (expected ~1)")
        # Average pooling keeps a channel's mean but lowers its variance, so this ratio grows at
        # each transition (to ~0.15 in the last stage on real images); the ablation passes 0.5.
        if cur.mean_sq > 0.25 * cur.var:
            problems.append(f"{cur.name}: mean shift {cur.mean_sq:.3f} vs variance {cur.var:.3f}")
    return problems


def _show(label: str, stats: list[StreamStats]) -> None:
    print(f"\n{label}")
    for s in stats:
        print(f"  {s.name:12s} {'T' if s.transition else ' '} expected {s.expected_var:.3f}  var {s.var:.3f}  mean^2 {s.mean_sq:.4f}")


def _nf(depths=(2, 2, 2, 2), width=64, alpha=0.2, weight_standardization=True) -> ImageClassifier:
    cfg = CifarResNetConfig(depths=depths, width=width, norm="none", alpha=alpha, weight_standardization=weight_standardization)
    return ImageClassifier(CifarResNet(cfg), CIFAR10_MEAN, CIFAR10_STD).eval()


def _stats(model: ImageClassifier, inputs: str, cifar_images: torch.Tensor) -> list[StreamStats]:
    if inputs == "gaussian":
        return residual_stream_stats(model.net, torch.randn(32, 3, 32, 32))
    return residual_stream_stats(model, cifar_images)


def test_every_block_is_its_shortcut_at_initialization(cifar_images: torch.Tensor) -> None:
    model = create_model("cifar_resnet18", 10, norm="none").eval()
    assert all(not b.conv2.gain.detach().any() for b in model.net.blocks())
    with torch.no_grad():
        h = model.net.stem(model.normalize(cifar_images))
        for block in model.net.blocks():
            out = block(h)
            if block.is_transition:
                assert torch.equal(out, block.shortcut(torch.relu(h) * block.beta))
            else:
                assert torch.equal(out, h)
            h = out


def test_stem_carries_the_relu_gain_as_timm() -> None:
    model = create_model("cifar_resnet18", 10, norm="none").eval()
    stats = residual_stream_stats(model.net, torch.randn(32, 3, 32, 32))
    # gamma^2 = 2.94, a little less with the zero padding at the borders; about 1 with gamma = 1
    assert 2.5 < stats[0].var < 3.2
    timm_stem = create_model("nf_resnet26", 10).net.stem.conv
    for conv in (model.net.stem, timm_stem):
        fan_in = conv.weight[0].numel()
        assert conv.scale * fan_in**0.5 == pytest.approx(RELU_GAMMA) and conv.bias is not None


def test_transition_shortcut_average_pools_as_timm() -> None:
    block = create_model("cifar_resnet18", 10, norm="none").net.stages[1][0]
    timm_pool = create_model("nf_resnet26", 10).net.stages[1][0].downsample.pool
    for attr in ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"):
        assert getattr(block.shortcut.pool, attr) == getattr(timm_pool, attr), attr
    # Every pixel of a 2x2 window reaches the output: a strided 1x1 conv would ignore (1, 1).
    x = torch.randn(1, 64, 8, 8)
    moved = x.clone()
    moved[0, :, 1, 1] += torch.randn(64)  # not a constant: standardized filters have zero mean
    with torch.no_grad():
        assert not torch.allclose(block.shortcut(x)[0, :, 0, 0], block.shortcut(moved)[0, :, 0, 0])


def test_nf_resnet18_gaussian_inputs() -> None:
    stats = residual_stream_stats(branches_at_full_strength(_nf()).net, torch.randn(32, 3, 32, 32))
    _show("cifar_resnet18 norm=none, branches on, N(0,1) inputs", stats)
    assert signal_problems(stats, alpha=0.2) == []
    # i.i.d. inputs: the 2x2 average pooling leaves about a quarter of the variance at each
    # transition (a strided 1x1 conv would keep all of it).
    drops = [c.var / p.var for p, c in zip(stats[:-1], stats[1:]) if c.transition]
    assert all(0.15 < d < 0.45 for d in drops), drops


def test_nf_resnet18_real_images(cifar_images: torch.Tensor) -> None:
    stats = residual_stream_stats(branches_at_full_strength(_nf()), cifar_images)
    _show("cifar_resnet18 norm=none, branches on, real CIFAR-10 images", stats)
    assert 0.05 < stats[0].var < 3.0
    assert signal_problems(stats, alpha=0.2) == []


@pytest.mark.parametrize("inputs", ["gaussian", "real"])
def test_nf_deeper_alpha_half_growth_within_stages(inputs: str, cifar_images: torch.Tensor) -> None:
    """Four blocks per stage and alpha=0.5: the variance doubles across each stage (1.25 -> 2)."""
    stats = _stats(branches_at_full_strength(_nf(depths=(4, 4, 4, 4), width=32, alpha=0.5)), inputs, cifar_images)
    _show(f"NF-ResNet (4,4,4,4) alpha=0.5, branches on, {inputs}", stats)
    assert signal_problems(stats, alpha=0.5) == []
    firsts = [i for i, s in enumerate(stats) if s.transition] + [len(stats)]
    for start, stop in zip([1, *firsts[:-1]], firsts):
        assert stats[stop - 1].var / stats[start].var == pytest.approx(2.0 / 1.25, rel=0.2)


@pytest.mark.parametrize("inputs", ["gaussian", "real"])
def test_ablation_without_weight_standardization_fails(inputs: str, cifar_images: torch.Tensor) -> None:
    stats = _stats(_nf(weight_standardization=False), inputs, cifar_images)
    _show(f"ablation: plain He-init convs, {inputs}", stats)
    problems = signal_problems(stats, alpha=0.2)
    assert any("mean shift" in p for p in problems), problems
    # the mean shift builds up with depth until it rivals the variance (Brock et al., 2021a, Fig. 2)
    assert stats[1].mean_sq < 0.1 * stats[1].var
    assert stats[-1].mean_sq > 0.5 * stats[-1].var


def test_skipinit_keeps_stream_at_transition_variance() -> None:
    """SkipInit: unit last-conv gains, but zero skip gains: the branches still add nothing."""
    model = create_model("cifar_resnet18", 10, norm="none", skipinit=True).eval()
    assert all(bool((b.conv2.gain.detach() == 1).all()) for b in model.net.blocks())
    stats = residual_stream_stats(model, torch.rand(16, 3, 32, 32))
    for prev, cur in zip(stats[:-1], stats[1:]):
        if not cur.transition:
            assert cur.var == pytest.approx(prev.var, rel=1e-6)


def test_relu_gamma_gives_unit_variance() -> None:
    from nofrost.models.nf_layers import RELU_GAMMA

    z = torch.randn(1_000_000, dtype=torch.float64)
    assert (torch.relu(z) * RELU_GAMMA).var().item() == pytest.approx(1.0, abs=0.01)
