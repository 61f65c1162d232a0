"""A dataset held entirely in memory as one uint8 tensor."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset

from nofrost.data.transforms import random_crop_flip


class TensorImageDataset(Dataset[tuple[Tensor, int]]):
    """Images as a uint8 ``(N, C, H, W)`` tensor plus int64 labels and class names.

    Items are ``(float32 CHW image in [0, 1], int label)``. With ``augment`` each item is
    randomly cropped (zero padding 4) and flipped using the global torch RNG; the batched
    :func:`nofrost.data.make_loader` path ignores this flag and uses its own, seeded one.
    """

    def __init__(
        self, images: Tensor, targets: Tensor, classes: Sequence[str], *, augment: bool = False
    ) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(
                f"TensorImageDataset expects uint8 images of shape (N, C, H, W), "
                f"got {images.dtype} of shape {tuple(images.shape)}"
            )
        if targets.shape != (images.shape[0],):
            raise ValueError(
                f"TensorImageDataset expects one label per image ({images.shape[0]}), "
                f"got targets of shape {tuple(targets.shape)}"
            )
        if len(targets) and not 0 <= int(targets.min()) <= int(targets.max()) < len(classes):
            raise ValueError(
                f"TensorImageDataset labels must lie in [0, {len(classes)}), "
                f"got range [{int(targets.min())}, {int(targets.max())}]"
            )
        self.images = images
        self.targets = targets.to(torch.int64)
        self.classes = list(classes)
        self.augment = augment

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        image = self.images[index]
        if self.augment:
            image = random_crop_flip(image[None])[0]
        return image.float().div_(255), int(self.targets[index])

    def subset(self, indices: Tensor) -> TensorImageDataset:
        """A new dataset with the images at ``indices`` (copied), same classes and augment flag."""
        return TensorImageDataset(
            self.images[indices], self.targets[indices], self.classes, augment=self.augment
        )
