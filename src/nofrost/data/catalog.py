"""The named datasets: ``load_dataset``, ``list_datasets`` and ``dataset_info``."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from torch.utils.data import Dataset

from nofrost.data.cifar import CIFAR10_LAYOUT, load_cifar10, load_cifar10_mini
from nofrost.data.fashion_mnist import FASHION_MNIST_LAYOUT, load_fashion_mnist
from nofrost.data.imagenet import IMAGENET_LAYOUT, load_imagenet
from nofrost.data.info import CIFAR10_INFO, FASHION_MNIST_INFO, DatasetInfo, imagenet_info
from nofrost.data.tensor_dataset import TensorImageDataset
from nofrost.data.views import check_views


@dataclass(frozen=True)
class _Entry:
    info: Callable[[], DatasetInfo]
    splits: tuple[str, ...]
    layout: str | None  # what ``root`` must hold; None: shipped with the package, takes no root
    aliases: dict[str, str] = field(default_factory=dict)


_DATASETS: dict[str, _Entry] = {
    "cifar10-mini": _Entry(lambda: CIFAR10_INFO, ("train", "test"), layout=None),
    "cifar10": _Entry(lambda: CIFAR10_INFO, ("train", "test"), CIFAR10_LAYOUT),
    "fashion-mnist": _Entry(lambda: FASHION_MNIST_INFO, ("train", "test"), FASHION_MNIST_LAYOUT),
    "imagenet": _Entry(imagenet_info, ("train", "val"), IMAGENET_LAYOUT, aliases={"test": "val"}),
}


def list_datasets() -> list[str]:
    """The names :func:`load_dataset` accepts."""
    return sorted(_DATASETS)


def dataset_info(name: str) -> DatasetInfo:
    """Classes, shape and normalization statistics of dataset ``name``."""
    return _entry(name).info()


def load_dataset(
    name: str,
    split: str,
    root: str | os.PathLike[str] | None = None,
    *,
    augment: bool = False,
    image_size: int | None = None,
    views: tuple[str, ...] = (),
) -> Dataset:
    """Dataset ``name``'s ``split``; items are ``(float32 CHW image in [0, 1], int label)``.

    - ``cifar10-mini``: the shipped 10,000/2,000-image stratified CIFAR-10 subset. It takes no
      ``root``: passing one raises ValueError (so a root meant for another dataset is not
      silently ignored).
    - ``cifar10``: ``root`` is the official python-batches folder (or its parent) or a
      ``cifar10_jpeg.npz`` archive (or a folder holding one). Splits ``train``/``test``.
    - ``fashion-mnist``: ``root`` holds the four IDX files (optionally ``.gz``).
    - ``imagenet``: ``root`` holds ``train/`` and ``val/`` class folders; split ``test`` means
      ``val``. Images are ``image_size`` (default 224) square; see ``imagenet.py``.

    The first three return a :class:`TensorImageDataset` (decoded once per process and split);
    their ``image_size`` may only be None or the native size. ``augment`` selects random
    crop + flip for the items. ``views`` (see :mod:`nofrost.data.views`) adds extra views of
    each training image: folder datasets draw them in their items, tensor datasets leave them
    to :func:`~nofrost.data.make_loader`, which computes them batched on the device.
    """
    entry = _entry(name)
    views = check_views(views)
    split = entry.aliases.get(split, split)
    if split not in entry.splits:
        allowed = sorted([*entry.splits, *entry.aliases])
        raise ValueError(
            f"unknown split {split!r} for dataset {name!r}; allowed: {', '.join(allowed)}"
        )
    if image_size is not None and image_size < 1:
        raise ValueError(
            f"image_size must be a positive number of pixels or None, got {image_size}"
        )
    if entry.layout is None:
        if root is not None:
            raise ValueError(
                f"dataset {name!r} ships with the package and takes no root, got root={root!r}"
            )
        _check_native_size(name, image_size)
        return TensorImageDataset(*load_cifar10_mini(split), augment=augment)
    if root is None:
        raise ValueError(f"dataset {name!r} needs root=...; {entry.layout}")
    if name == "imagenet":
        size = entry.info().image_size if image_size is None else image_size
        return load_imagenet(Path(root), split, augment=augment, image_size=size, views=views)
    _check_native_size(name, image_size)
    read = load_cifar10 if name == "cifar10" else load_fashion_mnist
    return TensorImageDataset(*read(Path(root), split), augment=augment)


def _check_native_size(name: str, image_size: int | None) -> None:
    native = _entry(name).info().image_size
    if image_size not in (None, native):
        raise ValueError(
            f"dataset {name!r} has {native}x{native} images; image_size must be None or {native}, "
            f"got {image_size}"
        )


def _entry(name: str) -> _Entry:
    try:
        return _DATASETS[name]
    except KeyError:
        raise ValueError(
            f"unknown dataset {name!r}; available: {', '.join(list_datasets())}"
        ) from None
