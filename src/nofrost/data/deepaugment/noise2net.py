"""Noise2Net (Hendrycks et al. 2021, "The Many Faces of Robustness", Sec. 4): a randomly
initialised Res2Net-style image-to-image network, drawn afresh for every batch, that needs no
weight files.

Settings from hendrycks/imagenet-r ``DeepAugment/train_noise2net.py`` (commit c5cd2df):
four ``Bottle2neck(3, 3)`` blocks, each ``x + ε·block(x)``, with ``hidden_planes=16`` and
``scale=4`` (``Res2Net(epsilon=0.50, hidden_planes=16, ...)`` in ``train()``, ``Bottle2neck``'s
default ``scale = 4``); each of the block's three inner convolutions has kernel K ∈ {1, 3} and
dilation D ∈ {1, 2, 3} drawn at random (``K = random.choice([1, 3])``, ``D = random.choice([1,
2, 3])``); every example of the batch gets its own weights (grouped convolutions with
``groups=batch_size``), re-initialised for each batch with PyTorch's default initialisation
(``reload_parameters``: ``reset_parameters`` of every Conv2d and BatchNorm2d); the batch norms
run in train mode on a ``(1, batch·C, H, W)`` tensor, i.e. they normalise each example's
channel over its pixels (instance normalisation); ε ~ U[max_eps / 2, max_eps] per batch with
``--noisenet-max-eps`` 0.75. The network works on ImageNet-normalised images (``preprocess``:
mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225)).

Ours differs in two stated ways: K and D are drawn per batch (the reference draws them when it
builds the network, once per epoch), and the output is mapped back to pixels and clipped to
[0, 1] (nofrost models normalise inside).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from nofrost.data.deepaugment import _random

MAX_EPS = 0.75  # --noisenet-max-eps default
HIDDEN_PLANES = 16
SCALE = 4
BLOCKS = 4
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class Noise2Net:
    """Noise2Net as a callable: ``noise2net(images in [0, 1]) -> images in [0, 1]``."""

    variant = "noise2net"

    def __init__(self, max_eps: float = MAX_EPS) -> None:
        if not 0 < max_eps:
            raise ValueError(f"Noise2Net's max_eps must be positive (the reference uses {MAX_EPS}), got {max_eps}")
        self.max_eps = max_eps

    @torch.no_grad()
    def __call__(self, x: Tensor) -> Tensor:
        mean = x.new_tensor(MEAN)[:, None, None]
        std = x.new_tensor(STD)[:, None, None]
        h = (x - mean) / std
        eps = _random.uniform(self.max_eps / 2, self.max_eps)
        for _ in range(BLOCKS):
            h = h + eps * _bottle2neck(h)
        return (h * std + mean).clamp(0, 1)


def _conv_init(n: int, out_channels: int, in_channels: int, k: int, like: Tensor, bias: bool) -> tuple[Tensor, Tensor | None]:
    """Per-example weights as nn.Conv2d.reset_parameters draws them: U(±1/sqrt(fan_in))
    (kaiming_uniform with a = sqrt(5)), and the bias likewise."""
    bound = 1 / math.sqrt(in_channels * k * k)
    weight = (torch.rand(n * out_channels, in_channels, k, k, device=like.device, dtype=like.dtype) * 2 - 1) * bound
    b = (torch.rand(n * out_channels, device=like.device, dtype=like.dtype) * 2 - 1) * bound if bias else None
    return weight, b


def _per_example_conv(h: Tensor, out_channels: int, k: int = 1, dilation: int = 1, bias: bool = False) -> Tensor:
    """Each example through its own freshly drawn convolution (the reference's grouped conv)."""
    n, c, height, width = h.shape
    weight, b = _conv_init(n, out_channels, c, k, h, bias)
    if k == 1:  # a batched matrix product: much faster than a 1x1 conv with n groups on CPU
        out = torch.bmm(weight.view(n, out_channels, c), h.reshape(n, c, height * width)).view(n, out_channels, height, width)
        return out if b is None else out + b.view(n, out_channels, 1, 1)
    padding = (k - 1) // 2 * dilation
    out = F.conv2d(h.reshape(1, n * c, height, width), weight, b, padding=padding, dilation=dilation, groups=n)
    return out.view(n, out_channels, height, width)


def _bottle2neck(x: Tensor) -> Tensor:
    out = F.relu(F.instance_norm(_per_example_conv(x, HIDDEN_PLANES * SCALE)))
    splits = out.split(HIDDEN_PLANES, 1)
    pieces: list[Tensor] = []
    for i in range(SCALE - 1):
        sp = splits[i] if i == 0 else pieces[-1] + splits[i]
        k, dilation = _random.choice((1, 3)), _random.choice((1, 2, 3))
        sp = F.relu(F.instance_norm(_per_example_conv(sp, HIDDEN_PLANES, k, dilation, bias=True)))
        pieces.append(sp)
    out = torch.cat([*pieces, splits[SCALE - 1]], 1)
    return F.instance_norm(_per_example_conv(out, x.shape[1]))
