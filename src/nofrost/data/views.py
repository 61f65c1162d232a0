"""Extra views of each training image that a method asks the loader for (``method.views``).

A view is another augmentation of the same source image, drawn independently of the standard
one, as the NoFrost reference code loads its texture-debiased images next to the clean ones
(``utils/crt_dataloader.py``, ``TriComprehensiveRobustnessDataset``). Each view has a batched
form, run on the device for in-memory tensor datasets, and a per-image torchvision transform,
run in the DataLoader's workers for folder datasets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from nofrost.data.tda import tda_transform, texture_debiased_batch


@dataclass(frozen=True)
class View:
    batch: Callable[[Tensor, torch.Generator | None], Tensor]  # (N, C, H, W) uint8 -> float [0, 1]
    transform: Callable[[int], Callable]  # image_size -> per-image transform (PIL -> float CHW)


VIEWS: dict[str, View] = {
    "tda": View(batch=texture_debiased_batch, transform=tda_transform),
}


def check_views(views: Sequence[str]) -> tuple[str, ...]:
    """``views`` as a tuple, or ValueError naming an unknown one and the known ones."""
    unknown = [v for v in views if v not in VIEWS]
    if unknown:
        raise ValueError(f"unknown image view {unknown[0]!r}; known views: {', '.join(sorted(VIEWS))}")
    return tuple(views)
