"""Fashion-MNIST from its IDX files."""

from __future__ import annotations

from pathlib import Path

from nofrost.data.datasets._registry import native_size, register_dataset
from nofrost.data.fashion_mnist import FASHION_MNIST_LAYOUT, load_fashion_mnist
from nofrost.data.info import FASHION_MNIST_INFO
from nofrost.data.tensor_dataset import TensorImageDataset


@register_dataset("fashion-mnist", summary="Fashion-MNIST (IDX files, plain or .gz)",
                  info=lambda: FASHION_MNIST_INFO, splits=("train", "test"), layout=FASHION_MNIST_LAYOUT)
def fashion_mnist(root: Path, split: str, *, augment: bool, image_size: int | None) -> TensorImageDataset:
    native_size("fashion-mnist", FASHION_MNIST_INFO, image_size)
    return TensorImageDataset(*load_fashion_mnist(root, split), augment=augment)
