"""``corrupt``: apply one published corruption at one severity to a batch, deterministically."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import torch

# the corruption modules register themselves on import
from nofrost.data.corruptions import blur, digital, noise, weather  # noqa: F401
from nofrost.data.corruptions.base import CORRUPTIONS
from nofrost.data.corruptions.constants import TABLES

#: Bumped whenever a change to the corruption code changes generated images (cache key).
GENERATOR_VERSION = 1


def check_variant(corruption: str, severity: int, resolution: str) -> tuple:
    """The published parameters of ``corruption`` at ``severity`` for ``resolution``; a clear
    ValueError for an unknown corruption, severity or resolution."""
    from nofrost.data.corruptions import SEVERITIES, list_corruptions

    if resolution not in TABLES:
        raise ValueError(f"unknown corruption resolution {resolution!r}; valid: {', '.join(TABLES)}")
    if corruption not in TABLES[resolution]:
        raise ValueError(f"unknown corruption {corruption!r}; valid: {', '.join(list_corruptions())}")
    if severity not in SEVERITIES:
        raise ValueError(f"corruption severity must be one of {list(SEVERITIES)}, got {severity!r}")
    return TABLES[resolution][corruption][severity - 1]


def image_rng(seed: int, corruption: str, severity: int, index: int) -> np.random.Generator:
    """The generator of one image: a function of (seed, corruption, severity, index) only."""
    return np.random.default_rng([seed, zlib.crc32(corruption.encode()), severity, index])


def corrupt(
    images,
    corruption: str,
    severity: int,
    *,
    resolution: str = "cifar",
    seed: int = 0,
    indices: Sequence[int] | None = None,
):
    """Corrupt a batch of RGB images with one published corruption at one severity.

    Args:
        images: either a NumPy ``uint8`` array ``(N, H, W, 3)`` (returned as ``uint8``,
            truncated to integers as the published generators saved them) or a float torch
            tensor ``(N, 3, H, W)`` in [0, 1] (returned as a tensor of the same dtype and device,
            in [0, 1]).
        corruption: one of :func:`~nofrost.data.corruptions.list_corruptions`.
        severity: 1 to 5.
        resolution: whose published constants to use: ``"cifar"`` (CIFAR-10-C, for 32 px
            images) or ``"imagenet"`` (ImageNet-C, for 224 px images).
        seed: with ``indices``, the only source of randomness.
        indices: the dataset index of each image (default ``0..N-1``). Image ``i``'s random
            draws depend only on ``(seed, corruption, severity, indices[i])``, so corrupting a
            batch equals corrupting its images one at a time.
    """
    params = check_variant(corruption, severity, resolution)
    is_tensor = isinstance(images, torch.Tensor)
    if is_tensor:
        if not images.is_floating_point() or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(
                f"corrupt takes a float tensor (N, 3, H, W) in [0, 1], got {images.dtype} of "
                f"shape {tuple(images.shape)}"
            )
        x = images.detach().to("cpu", torch.float32).permute(0, 2, 3, 1).numpy()
    else:
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3:
            raise ValueError(
                f"corrupt takes a uint8 array (N, H, W, 3), got {images.dtype} of shape {images.shape}"
            )
        x = images.astype(np.float32) / 255
    n = x.shape[0]
    indices = range(n) if indices is None else [int(i) for i in indices]
    if len(indices) != n:
        raise ValueError(f"corrupt got {len(indices)} indices for {n} images")
    rngs = [image_rng(seed, corruption, severity, i) for i in indices]
    out = np.clip(CORRUPTIONS.get(corruption)(np.ascontiguousarray(x), params, rngs), 0, 1)
    if is_tensor:
        return torch.from_numpy(np.ascontiguousarray(out.transpose(0, 3, 1, 2))).to(images)
    # the published files hold np.uint8(float in [0, 255]): truncation; the small offset keeps
    # values that are whole numbers up to float32 rounding (e.g. 153 as 152.99998) whole
    return np.floor(out * 255 + 1e-3).astype(np.uint8)
