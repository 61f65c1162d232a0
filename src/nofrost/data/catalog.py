"""The named datasets: ``load_dataset``, ``list_datasets`` and ``dataset_info``.

Each dataset is registered with its metadata in :mod:`nofrost.data.datasets` (one module per
family); this module validates the arguments against that entry and calls its loader.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

from torch.utils.data import Dataset

from nofrost.data.datasets import DatasetEntry, dataset_entry
from nofrost.data.datasets._registry import DATASETS
from nofrost.data.info import DatasetInfo
from nofrost.data.tensor_dataset import TensorImageDataset
from nofrost.data.views import check_views


def list_datasets() -> list[str]:
    """The names :func:`load_dataset` accepts."""
    return DATASETS.names()


def dataset_info(name: str) -> DatasetInfo:
    """Classes, shape and normalization statistics of dataset ``name``."""
    return dataset_entry(name).info()


def describe_dataset(name: str) -> DatasetEntry:
    """Everything registered about dataset ``name``: splits, root layout, variant parameters."""
    return dataset_entry(name)


def load_dataset(
    name: str,
    split: str,
    root: str | os.PathLike[str] | None = None,
    *,
    augment: bool = False,
    image_size: int | None = None,
    views: tuple[str, ...] = (),
    **variant: Any,
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

    Datasets with variants take them as keywords (``corruption="fog", severity=3``); every
    variant a dataset declares must be given, and one it does not declare is refused.
    ``list_datasets()`` names them all and ``describe_dataset(name)`` says what each takes.

    Datasets held in memory return a :class:`TensorImageDataset` (decoded once per process and
    split); their ``image_size`` may only be None or the native size. ``augment`` selects
    random crop + flip for the items. ``views`` (see :mod:`nofrost.data.views`) adds extra views
    of each training image: folder datasets whose loader takes ``views`` draw them in their
    items, tensor datasets leave them to :func:`~nofrost.data.make_loader`, which computes them
    batched on the device; any other dataset refuses them.
    """
    entry = dataset_entry(name)
    split = entry.resolve_split(split)
    if image_size is not None and image_size < 1:
        raise ValueError(f"image_size must be a positive number of pixels or None, got {image_size}")
    variants = entry.check_variants(variant)
    views = check_views(views)
    drawn_by_items = bool(views) and "views" in inspect.signature(entry.load).parameters
    dataset = entry.load(entry.root_path(root), split, augment=augment, image_size=image_size, **variants,
                         **({"views": views} if drawn_by_items else {}))
    if views and not drawn_by_items and not isinstance(dataset, TensorImageDataset):
        raise ValueError(f"dataset {name!r} cannot give the training views {', '.join(views)}")
    return dataset
