"""The faster copy attacks run on (attacks/_fast.py): same function, model untouched, safe fall-backs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from timm.layers import ScaledStdConv2d
from torch import nn

import nofrost
from nofrost.attacks._fast import _ChannelAffine, fast_eval_copy
from nofrost.data import load_dataset, stratified_subset

ASSETS = Path(__file__).resolve().parents[1] / "assets"


@pytest.fixture(scope="module")
def images():
    data = stratified_subset(load_dataset("cifar10-mini", "test"), 32)
    return data.images.float() / 255


def state(model):
    return ({k: v.clone() for k, v in model.state_dict().items()},
            [p.requires_grad for p in model.parameters()], [m.training for m in model.modules()])


@pytest.mark.parametrize("asset", ["cifar_resnet10_sat_bn", "cifar_resnet10_nofrost_nf"])
def test_copy_computes_the_same_function_and_leaves_the_model_alone(asset, images):
    model = nofrost.load_model(ASSETS / asset)
    before = state(model)
    with torch.no_grad():
        logits = model(images)
    fast = fast_eval_copy(model, images[:8], logits[:8])
    assert fast is not model
    # the rewrites happened: no Scaled-WS convolution and no BatchNorm left (conv → BN pairs
    # folded, the pre-activation ones, which follow no convolution, made affine maps)
    assert not any(isinstance(m, ScaledStdConv2d) for m in fast.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())
    affine = sum(isinstance(m, _ChannelAffine) for m in fast.modules())
    batchnorm = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert 0 < affine < batchnorm if batchnorm else affine == 0
    assert all(not p.requires_grad for p in fast.parameters()) and not fast.training
    with torch.no_grad():
        torch.testing.assert_close(fast(images), logits, rtol=1e-4, atol=1e-4)
    x = images.clone().requires_grad_(True)
    (g_model,) = torch.autograd.grad(model(x).logsumexp(1).sum(), x)
    (g_fast,) = torch.autograd.grad(fast(x).logsumexp(1).sum(), x)
    assert float((g_fast - g_model).norm() / g_model.norm()) < 1e-4
    after = state(model)
    assert all(torch.equal(before[0][k], after[0][k]) for k in before[0])
    assert before[1:] == after[1:]
    assert fast_eval_copy(fast, images[:8], logits[:8]) is fast  # a copy of a copy: itself


def test_copy_is_made_for_bf16_attacks_too(images):
    """The copy is checked in fp32 even under autocast: in bf16, rounding would reject it."""
    model = nofrost.load_model(ASSETS / "cifar_resnet10_sat_bn")
    with torch.no_grad():
        logits = model(images[:8])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast = fast_eval_copy(model, images[:8], logits)
    assert fast is not model
    with torch.no_grad():
        torch.testing.assert_close(fast(images), model(images), rtol=1e-4, atol=1e-4)


class Noisy(nn.Module):
    """A randomized model: the copy's logits cannot match, so the model itself is attacked."""

    def __init__(self, base):
        super().__init__()
        self.base = base

    def forward(self, x):
        return self.base((x + 0.1 * torch.randn_like(x)).clamp(0, 1))


class Checked(nn.Module):
    """A wrapper fx cannot trace (a data-dependent check): its backbone is still folded."""

    def __init__(self, base):
        super().__init__()
        self.base = base

    def forward(self, x):
        if float(x.max()) > 1:
            raise ValueError("images must lie in [0, 1]")
        return self.base(x)


def test_falls_back_to_the_model_where_the_copy_would_differ(images):
    base = nofrost.load_model(ASSETS / "cifar_resnet10_sat_bn")
    with torch.no_grad():
        logits = base(images[:8])
    noisy = Noisy(base).eval()
    with torch.no_grad():
        assert fast_eval_copy(noisy, images[:8], noisy(images[:8])) is noisy
    base.train()
    assert fast_eval_copy(base, images[:8], logits) is base  # train mode: not a fixed function
    base.eval()
    assert fast_eval_copy(base, images[:0], logits[:0]) is base  # nothing to check it on
    checked = Checked(base).eval()
    fast = fast_eval_copy(checked, images[:8], logits)
    assert fast is not checked
    with torch.no_grad():
        torch.testing.assert_close(fast(images[:8]), logits, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_after_no_convolution_becomes_its_affine_map(affine, images):
    """A BN after a ReLU cannot be folded; it becomes x·scale + shift, with or without its own
    weight and bias. A BN subclass (it may compute something else) is left as it is."""
    from nofrost.models.ghost_bn import GhostBatchNorm2d

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.ReLU(), nn.BatchNorm2d(8, affine=affine), nn.Conv2d(8, 8, 3),
        nn.ReLU(), GhostBatchNorm2d(8, group_size=4), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4),
    )  # fmt: skip
    with torch.no_grad():  # statistics and weights away from BN's identity initialisation
        for bn in (model[2], model[5]):
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
            if bn.affine:
                bn.weight.uniform_(0.5, 2)
                bn.bias.uniform_(-1, 1)
    model.eval()
    with torch.no_grad():
        logits = model(images)
    fast = fast_eval_copy(model, images[:8], logits[:8])
    assert isinstance(fast[2], _ChannelAffine) and type(fast[5]) is GhostBatchNorm2d
    with torch.no_grad():
        torch.testing.assert_close(fast(images), logits, rtol=1e-5, atol=1e-5)


def test_affine_batchnorm_keeps_bf16_activations_in_bf16(images):
    """Under bf16 autocast BatchNorm passes bf16 on; its affine replacement must too, or every
    later layer would receive fp32 activations to cast again."""
    model = nofrost.load_model(ASSETS / "cifar_resnet10_sat_bn")
    with torch.no_grad():
        fast = fast_eval_copy(model, images[:8], model(images[:8]))
    seen = []
    for module in fast.modules():
        if isinstance(module, _ChannelAffine):
            module.register_forward_hook(lambda m, args, out: seen.append(out.dtype))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        fast(images[:4])
    assert seen and set(seen) == {torch.bfloat16}
