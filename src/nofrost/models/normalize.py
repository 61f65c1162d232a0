"""Input normalization inside the model, and the wrapper every nofrost model is made of.

Contract (shared/DESIGN.md): images are float tensors in [0, 1] of shape (N, C, H, W) and
every model normalizes internally, so attacks, their epsilon balls and the [0, 1] clamp all
live in pixel space, and a checkpoint carries the mean/std it was trained with.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

CIFAR10_MEAN: tuple[float, float, float] = (0.4914, 0.4822, 0.4465)
CIFAR10_STD: tuple[float, float, float] = (0.2470, 0.2435, 0.2616)
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


class Normalize(nn.Module):
    """Per-channel ``(x - mean) / std`` with mean/std stored as (persistent) buffers.

    The buffers are part of the state dict (``normalize.mean``, ``normalize.std``), so a
    saved model always knows which input statistics it was trained on.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        mean_t = torch.as_tensor([float(m) for m in mean], dtype=torch.float32)
        std_t = torch.as_tensor([float(s) for s in std], dtype=torch.float32)
        if mean_t.ndim != 1 or mean_t.numel() == 0 or mean_t.shape != std_t.shape:
            raise ValueError(
                f"mean and std must be non-empty sequences of equal length, got "
                f"mean={list(mean)} and std={list(std)}"
            )
        if not bool(torch.all(std_t > 0)):
            raise ValueError(f"every std must be > 0, got std={list(std)}")
        self.register_buffer("mean", mean_t.view(1, -1, 1, 1))
        self.register_buffer("std", std_t.view(1, -1, 1, 1))

    @property
    def num_channels(self) -> int:
        return self.mean.shape[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.num_channels:
            raise ValueError(
                f"expected images of shape (N, {self.num_channels}, H, W) with values in "
                f"[0, 1], got a tensor of shape {tuple(x.shape)}"
            )
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        mean = [round(v, 4) for v in self.mean.flatten().tolist()]
        std = [round(v, 4) for v in self.std.flatten().tolist()]
        return f"mean={mean}, std={std}"


class ImageClassifier(nn.Module):
    """``net(normalize(x))``: a classifier that takes [0, 1] images.

    The wrapped network keeps its own state-dict keys under the single prefix ``net.``
    (for timm models these are exactly timm's keys, so official checkpoints map by adding
    the prefix), and the input statistics live under ``normalize.``.
    """

    def __init__(self, net: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.net = net
        # Let layers that raise shape errors (e.g. instance norm at 1x1) name themselves.
        for name, module in self.named_modules():
            if hasattr(module, "layer_name"):
                module.layer_name = name

    @property
    def num_classes(self) -> int:
        return int(getattr(self.net, "num_classes"))

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Activation (gradient) checkpointing in the wrapped network, where it supports it."""
        setter = getattr(self.net, "set_grad_checkpointing", None)
        if setter is None:
            raise ValueError(f"{type(self.net).__name__} does not support gradient checkpointing")
        setter(enable)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(x))
