"""CIFAR-10: the shipped stratified subset (``cifar10-mini``) and the full set (``cifar10``)."""

from __future__ import annotations

from pathlib import Path

from nofrost.data.cifar import CIFAR10_LAYOUT, load_cifar10, load_cifar10_mini
from nofrost.data.datasets._registry import native_size, register_dataset
from nofrost.data.info import CIFAR10_INFO
from nofrost.data.tensor_dataset import TensorImageDataset


@register_dataset("cifar10-mini", summary="the shipped stratified CIFAR-10 subset (10,000 train / 2,000 test)",
                  info=lambda: CIFAR10_INFO, splits=("train", "test"), layout=None)
def cifar10_mini(root: None, split: str, *, augment: bool, image_size: int | None) -> TensorImageDataset:
    native_size("cifar10-mini", CIFAR10_INFO, image_size)
    return TensorImageDataset(*load_cifar10_mini(split), augment=augment)


@register_dataset("cifar10", summary="CIFAR-10 (official python batches or cifar10_jpeg.npz)",
                  info=lambda: CIFAR10_INFO, splits=("train", "test"), layout=CIFAR10_LAYOUT)
def cifar10(root: Path, split: str, *, augment: bool, image_size: int | None) -> TensorImageDataset:
    native_size("cifar10", CIFAR10_INFO, image_size)
    return TensorImageDataset(*load_cifar10(root, split), augment=augment)
