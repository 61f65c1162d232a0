"""Signal propagation statistics of the residual stream (Brock et al., 2021a, Sec. 3).

Brock, De & Smith (2021a) study a ResNet at initialization through its *signal
propagation plot*: for the residual stream after every block, the mean over channels of
the squared per-channel mean ("mean shift") and of the per-channel variance. A
well-behaved normalizer-free ResNet keeps the mean shift near zero and the variance at its
analytic value: 1 after the stem, growing by alpha^2 per block, reset to 1 + alpha^2 after
each transition block.

At initialization every network here is positively homogeneous (ReLU, zero biases), so an
input whose stem output has variance ``s`` gives a stream ``s`` times the unit-input one;
compare measured variances with ``s * expected_var`` (``stem`` entry). The NF-ResNets start
with zero-gain residual branches (as timm's): the analytic growth shows once the branches are
at full strength, and the average-pooled transition shortcut changes ``s`` at each stage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from nofrost.models.cifar_resnet import CifarResNet
from nofrost.models.normalize import ImageClassifier


@dataclass(frozen=True)
class StreamStats:
    """Statistics of the residual stream after one block (or after the stem)."""

    name: str
    mean_sq: float  # mean over channels of the squared per-channel mean
    var: float  # mean over channels of the per-channel variance
    expected_var: float  # analytic variance for unit-variance stem output (NaN if not NF)
    transition: bool  # the block changes shape (its shortcut is a convolution)


def _channel_stats(h: torch.Tensor) -> tuple[float, float]:
    h = h.detach().double()
    mean = h.mean(dim=(0, 2, 3))
    var = h.var(dim=(0, 2, 3), unbiased=False)
    return float((mean**2).mean()), float(var.mean())


@torch.no_grad()
def residual_stream_stats(model: nn.Module, x: torch.Tensor) -> list[StreamStats]:
    """Stream statistics after the stem and after each block of a ``CifarResNet``.

    ``model`` is a ``CifarResNet`` fed *normalized* inputs ``x``, or an ``ImageClassifier``
    around one fed [0, 1] images. Run it in eval mode for initialization statistics
    (dropout / drop-path off); the model's mode is left unchanged.
    """
    if isinstance(model, ImageClassifier):
        x = model.normalize(x)
        model = model.net
    if not isinstance(model, CifarResNet):
        raise TypeError(f"residual_stream_stats needs a CifarResNet, got {type(model).__name__}")
    outputs: list[tuple[str, torch.Tensor]] = []
    names = {id(m): n for n, m in model.named_modules()}
    hooks = [model.stem.register_forward_hook(lambda m, i, o: outputs.append(("stem", o)))]
    for block in model.blocks():
        hooks.append(block.register_forward_hook(lambda m, i, o: outputs.append((names[id(m)], o))))
    try:
        model.forward_features(x)
    finally:
        for hook in hooks:
            hook.remove()
    blocks = list(model.blocks())
    stats = []
    for k, (name, h) in enumerate(outputs):
        mean_sq, var = _channel_stats(h)
        if k == 0:
            expected, transition = (1.0 if model.cfg.normalizer_free else math.nan), False
        else:
            expected, transition = blocks[k - 1].expected_var_out, blocks[k - 1].is_transition
        stats.append(StreamStats(name, mean_sq, var, expected, transition))
    return stats
