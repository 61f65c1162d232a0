"""ImageNet from ``train/`` and ``val/`` folders of class folders (torchvision ImageFolder)."""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

from torch import Tensor
from torchvision import transforms as T
from torchvision.datasets import ImageFolder

from nofrost.data.info import imagenet_classes
from nofrost.data.views import VIEWS, check_views

IMAGENET_LAYOUT = (
    "expected <root>/train/<wnid>/*.JPEG and <root>/val/<wnid>/*.JPEG "
    "(torchvision ImageFolder layout)"
)
CROP_FRACTION = 0.875


class ImageNetFolder(ImageFolder):
    """An ImageFolder whose labels are ImageNet-1k indices when the class folders are WNIDs.

    If every class folder is an ImageNet-1k WNID (any subset of the 1,000), ``targets`` are the
    standard sorted-WNID indices, ``classes`` lists all 1,000 class names and ``class_to_idx``
    maps each present WNID to its index. If no folder is a WNID it behaves like ImageFolder
    (sorted folder order, ``classes`` = folder names). A mix of both raises ValueError.
    ``augment`` records which transform the dataset was built with. With ``views`` (names of
    :data:`nofrost.data.views.VIEWS`) items are ``(image, label, {view: image})``, each view
    drawn from the same photo by its own transform, in the loader's workers.
    """

    def __init__(self, root: Path, transform: Callable[..., Tensor], *, augment: bool,
                 views: Sequence[str] = (), image_size: int | None = None) -> None:
        self.augment = augment
        self.views = check_views(views)
        self.view_transforms = {name: VIEWS[name].transform(image_size) for name in self.views}
        super().__init__(str(root), transform=transform)

    def __getitem__(self, index: int) -> Any:
        if not self.views:
            return super().__getitem__(index)
        path, target = self.samples[index]
        photo = self.loader(path)
        return self.transform(photo), target, {name: t(photo) for name, t in self.view_transforms.items()}

    def find_classes(self, directory: str | Path) -> tuple[list[str], dict[str, int]]:
        folders = sorted(entry.name for entry in os.scandir(directory) if entry.is_dir())
        if not folders:
            raise FileNotFoundError(f"no class folders in {directory}; {IMAGENET_LAYOUT}")
        wnids, names = imagenet_classes()
        index = {wnid: i for i, wnid in enumerate(wnids)}
        unknown = [f for f in folders if f not in index]
        if len(unknown) == len(folders):
            return folders, {f: i for i, f in enumerate(folders)}
        if unknown:
            raise ValueError(
                f"{directory} mixes ImageNet WNID class folders with others ({unknown[:5]}); "
                "expected only WNID folders (labels follow the 1k index) or none (sorted order)"
            )
        return list(names), {f: index[f] for f in folders}


def imagenet_transform(
    image_size: int, augment: bool, crop_fraction: float = CROP_FRACTION
) -> Callable[..., Tensor]:
    """RandomResizedCrop + flip for training; otherwise resize the shorter side to
    ``size / crop_fraction`` and center-crop ``size`` (crop_fraction 1: images already cropped,
    such as ImageNet-C's 224-pixel ones, stay as they are at 224)."""
    if augment:
        steps = [T.RandomResizedCrop(image_size), T.RandomHorizontalFlip()]
    else:
        steps = [T.Resize(round(image_size / crop_fraction)), T.CenterCrop(image_size)]
    return T.Compose([*steps, T.ToTensor()])


def load_wnid_folder(
    folder: Path,
    layout: str,
    *,
    image_size: int,
    augment: bool,
    crop_fraction: float = CROP_FRACTION,
    allowed: Collection[str] | None = None,
) -> ImageNetFolder:
    """``folder/<wnid>/*`` with 1000-class labels; every class folder must be an ImageNet WNID
    (of ``allowed``, when given). Errors name ``layout``, the layout the caller expects."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder; {layout}")
    folders = sorted(entry.name for entry in os.scandir(folder) if entry.is_dir())
    valid = set(imagenet_classes()[0]) if allowed is None else set(allowed)
    wrong = [f for f in folders if f not in valid]
    if not folders or wrong:
        what = "ImageNet WNIDs" if allowed is None else f"WNIDs of its {len(valid)} classes"
        found = f"found {', '.join(wrong[:5])}{' ...' if len(wrong) > 5 else ''}" if wrong else "found no folders"
        raise ValueError(f"{folder}: class folders must be {what} ({found}); {layout}")
    transform = imagenet_transform(image_size, augment, crop_fraction)
    return ImageNetFolder(folder, transform, augment=augment)


def load_imagenet(root: Path, split: str, *, augment: bool, image_size: int, views: Sequence[str] = ()) -> ImageNetFolder:
    """The ``split`` (``train`` or ``val``) folder under ``root``, images ``image_size`` square."""
    if not root.is_dir():
        raise FileNotFoundError(f"ImageNet root {root} is not a folder; {IMAGENET_LAYOUT}")
    folder = root / split
    if not folder.is_dir():
        raise FileNotFoundError(f"no ImageNet {split} folder at {folder}; {IMAGENET_LAYOUT}")
    return ImageNetFolder(folder, imagenet_transform(image_size, augment), augment=augment, views=views,
                          image_size=image_size)
