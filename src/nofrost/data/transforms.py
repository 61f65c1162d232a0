"""Batched, device-agnostic augmentation for small images."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def random_crop_flip(
    images: Tensor, pad: int = 4, generator: torch.Generator | None = None
) -> Tensor:
    """Zero-pad by ``pad``, crop back to the original size at a random offset and flip at random.

    Each image of the ``(N, C, H, W)`` batch gets its own offset and a horizontal flip with
    probability 1/2, all in one gather (no loop over images). The random draws come from
    ``generator`` (any device; the global RNG of ``images.device`` when None) and are then moved
    to ``images.device``, so a CPU generator gives the same crops on every device. Works for any
    dtype (output: the input's shape, dtype and device); cropping uint8 and converting after
    gives the same result as converting first, with a quarter of the memory traffic.
    """
    if images.dim() != 4:
        raise ValueError(
            f"random_crop_flip expects a (N, C, H, W) batch, got shape {tuple(images.shape)}"
        )
    if pad < 0:
        raise ValueError(f"random_crop_flip expects pad >= 0, got {pad}")
    n, c, h, w = images.shape
    draw_device = generator.device if generator is not None else images.device
    offsets = torch.randint(0, 2 * pad + 1, (2, n), generator=generator, device=draw_device)
    flips = torch.randint(0, 2, (n,), generator=generator, device=draw_device).bool()
    offsets, flips = offsets.to(images.device), flips.to(images.device)

    padded = F.pad(images, (pad, pad, pad, pad)).flatten(2)  # (N, C, (H + 2p) * (W + 2p))
    rows = offsets[0, :, None] + torch.arange(h, device=images.device)  # (N, H)
    cols = offsets[1, :, None] + torch.arange(w, device=images.device)  # (N, W)
    cols = torch.where(flips[:, None], cols.flip(1), cols)
    source = rows[:, :, None] * (w + 2 * pad) + cols[:, None, :]  # (N, H, W) flat positions
    crops = padded.gather(2, source.view(n, 1, h * w).expand(n, c, h * w))
    return crops.view(n, c, h, w)
