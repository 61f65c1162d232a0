"""ImageNet-1k from ``train/`` and ``val/`` class folders."""

from __future__ import annotations

from pathlib import Path

from nofrost.data.datasets._registry import register_dataset
from nofrost.data.imagenet import IMAGENET_LAYOUT, ImageNetFolder, load_imagenet
from nofrost.data.info import imagenet_info


@register_dataset("imagenet", summary="ImageNet-1k (train/ and val/ folders of WNID class folders)",
                  info=imagenet_info, splits=("train", "val"), aliases={"test": "val"}, layout=IMAGENET_LAYOUT)
def imagenet(root: Path, split: str, *, augment: bool, image_size: int | None,
             views: tuple[str, ...] = ()) -> ImageNetFolder:
    size = imagenet_info().image_size if image_size is None else image_size
    return load_imagenet(root, split, augment=augment, image_size=size, views=views)
