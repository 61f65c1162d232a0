"""A faster copy of a frozen eval-mode model, for the many passes of an evaluation's attacks.

An evaluation attacks a model whose parameters do not change, in eval mode, for thousands of
forward and backward passes. Three rewrites compute the same function with less work per
pass, and :func:`fast_eval_copy` applies them to a *copy* (the model itself is never touched):

* conv → BatchNorm pairs folded into one convolution (eval-mode BN is a fixed per-channel
  affine map), with ``torch.fx``'s ``fuse``;
* every other eval-mode BatchNorm (one that follows no convolution, as in pre-activation
  blocks) replaced by that affine map, one ``addcmul``, whose backward is a multiplication
  instead of ``native_batch_norm_backward``;
* Scaled-WS convolutions (NF models, timm's ``ScaledStdConv2d``) replaced by plain
  convolutions with their standardised weights computed once, instead of on every pass;
* parameters in channels_last, the native layout of oneDNN's CPU convolutions and of
  cuDNN's tensor-core ones.

The copy is used only for a model entirely in eval mode, and only if its logits on the first
images equal the model's (relative 1e-4); otherwise, and for anything unusual (a forward that
does not trace, random layers), the model itself is attacked. Whether an attack broke an
example is always decided on the model itself. Its speed is measured on CPU in
``benchmarks/eval_throughput.py``; on CUDA, ``benchmarks/attack_precision.py`` (run by
``benchmarks/run_gpu_checks.sh``) checks robust accuracy against fp32.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from timm.layers import ScaledStdConv2d
from torch import Tensor, nn

__all__ = ["fast_eval_copy"]

# Set on a copy, so that asking for a fast copy of a fast copy returns it as it is.
_MARK = "_nofrost_fast_eval_copy"


def _fold_batchnorm(module: nn.Module) -> nn.Module:
    """``module`` with every conv → eval-mode BatchNorm pair folded, where fx can trace it.

    Where tracing fails (a data-dependent check on the input, say) the children are tried, so a
    traceable backbone inside an untraceable wrapper is still folded.
    """
    from torch.fx.experimental.optimization import fuse

    try:
        return fuse(module, inplace=True)
    except Exception:  # noqa: BLE001 - any tracing failure: fold inside the children instead
        for name, child in list(module.named_children()):
            setattr(module, name, _fold_batchnorm(child))
        return module


def _standardized_weight(conv: ScaledStdConv2d) -> Tensor:
    """The kernel a Scaled-WS convolution applies: its weight standardised per output channel
    and scaled by ``gain · scale``, computed as timm's ``ScaledStdConv2d.forward`` does."""
    return F.batch_norm(
        conv.weight.reshape(1, conv.out_channels, -1), None, None,
        weight=(conv.gain * conv.scale).view(-1), training=True, momentum=0.0, eps=conv.eps,
    ).reshape_as(conv.weight)  # fmt: skip


def _freeze_weight_standardization(module: nn.Module) -> None:
    """Replace every Scaled-WS convolution below ``module`` by a plain one with its kernel."""
    for name, child in list(module.named_children()):
        if isinstance(child, ScaledStdConv2d):
            plain = nn.Conv2d(
                child.in_channels, child.out_channels, child.kernel_size, stride=child.stride,
                padding=child.padding, dilation=child.dilation, groups=child.groups,
                bias=child.bias is not None, device=child.weight.device, dtype=child.weight.dtype,
            )  # fmt: skip
            with torch.no_grad():
                plain.weight.copy_(_standardized_weight(child))
                if child.bias is not None:
                    plain.bias.copy_(child.bias)
            setattr(module, name, plain)
        else:
            _freeze_weight_standardization(child)


class _ChannelAffine(nn.Module):
    """What an eval-mode BatchNorm2d computes, ``x · scale + shift`` per channel, as one op."""

    def __init__(self, bn: nn.BatchNorm2d) -> None:
        super().__init__()
        scale = torch.rsqrt(bn.running_var + bn.eps)
        if bn.weight is not None:
            scale = scale * bn.weight
        shift = -bn.running_mean * scale
        if bn.bias is not None:
            shift = shift + bn.bias
        self.register_buffer("scale", scale.detach().view(1, -1, 1, 1))
        self.register_buffer("shift", shift.detach().view(1, -1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        # In x's dtype: under bf16 autocast the fp32 buffers would otherwise promote the
        # activations back to fp32, as BatchNorm does not.
        return torch.addcmul(self.shift.to(x.dtype), x, self.scale.to(x.dtype))


def _batchnorm_as_affine(module: nn.Module) -> None:
    """Replace every plain eval-mode BatchNorm2d below ``module`` (subclasses, which may
    compute something else, are left alone) by its :class:`_ChannelAffine`."""
    for name, child in list(module.named_children()):
        if type(child) is nn.BatchNorm2d and child.running_var is not None:
            setattr(module, name, _ChannelAffine(child))
        else:
            _batchnorm_as_affine(child)


def fast_eval_copy(model: nn.Module, probe: Tensor, probe_logits: Tensor) -> nn.Module:
    """A copy of ``model`` that computes the same function faster, or ``model`` itself.

    ``probe_logits`` are the model's fp32 logits on the images ``probe`` (already computed by
    the caller, so the model is not called here); the copy is compared with them in fp32,
    whatever precision the attacks then run at (compared under bf16, rounding alone would
    reject every copy). See the module docstring for when the copy is made; its parameters do
    not require gradients and it is in eval mode.
    """
    if getattr(model, _MARK, False):
        return model
    if probe.shape[0] == 0 or any(m.training for m in model.modules()):
        return model
    if not any(isinstance(m, nn.Conv2d) for m in model.modules()):
        return model
    try:
        fast = copy.deepcopy(model)
        _freeze_weight_standardization(fast)
        fast = _fold_batchnorm(fast)
        _batchnorm_as_affine(fast)
        fast = fast.to(memory_format=torch.channels_last)
        for param in fast.parameters():
            param.requires_grad_(False)
        fast.eval()
        with torch.no_grad(), torch.autocast(probe.device.type, enabled=False):
            got = fast(probe).float()
        want = probe_logits.detach().float()
        scale = want.abs().amax().clamp_min(1.0)
        if got.shape != want.shape or not bool((got - want).abs().amax() <= 1e-4 * scale):
            return model
    except Exception:  # noqa: BLE001 - anything unusual: attack the model as it is
        return model
    setattr(fast, _MARK, True)
    return fast
