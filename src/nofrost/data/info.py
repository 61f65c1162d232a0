"""Static facts about the supported datasets: shapes, class names and normalization statistics."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources

CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)

FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset.

    ``mean`` and ``std`` are the per-channel statistics (of pixels in [0, 1]) a model should
    normalize its inputs with; ``image_size`` is the side of the square images a loaded dataset
    yields by default.
    """

    num_classes: int
    in_chans: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: tuple[str, ...]


CIFAR10_INFO = DatasetInfo(
    num_classes=10,
    in_chans=3,
    image_size=32,
    mean=(0.4914, 0.4822, 0.4465),
    std=(0.2470, 0.2435, 0.2616),
    classes=CIFAR10_CLASSES,
)

FASHION_MNIST_INFO = DatasetInfo(
    num_classes=10,
    in_chans=1,
    image_size=28,
    mean=(0.2860,),
    std=(0.3530,),
    classes=FASHION_MNIST_CLASSES,
)


@functools.cache
def imagenet_classes() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The 1,000 ImageNet WNIDs in sorted (class-index) order and their class names.

    Read from the package asset ``assets/imagenet_classes.json``.
    """
    text = (
        resources.files(__package__).joinpath("assets", "imagenet_classes.json").read_text("utf-8")
    )
    table = json.loads(text)
    wnids, names = tuple(table["wnids"]), tuple(table["names"])
    if len(wnids) != 1000 or len(names) != 1000 or list(wnids) != sorted(wnids):
        raise ValueError(
            "package asset nofrost/data/assets/imagenet_classes.json is damaged: expected 1000 "
            f"sorted WNIDs and 1000 names, found {len(wnids)} WNIDs and {len(names)} names"
        )
    return wnids, names


@functools.cache
def imagenet_info() -> DatasetInfo:
    """ImageNet-1k at the usual 224-pixel evaluation size."""
    return DatasetInfo(
        num_classes=1000,
        in_chans=3,
        image_size=224,
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
        classes=imagenet_classes()[1],
    )


@functools.cache
def imagenet_ood_facts() -> dict:
    """The package asset ``assets/imagenet_ood.json``: the ImageNet-R and ImageNet-A class
    subsets (sorted WNIDs), AlexNet's ImageNet-C errors per corruption, and their sources."""
    text = resources.files(__package__).joinpath("assets", "imagenet_ood.json").read_text("utf-8")
    return json.loads(text)


def imagenet_indices(wnids: "list[str] | tuple[str, ...]") -> list[int]:
    """The sorted ImageNet-1k class indices of ``wnids`` (ValueError for one that is not a WNID)."""
    index = {wnid: i for i, wnid in enumerate(imagenet_classes()[0])}
    unknown = [w for w in wnids if w not in index]
    if unknown:
        raise ValueError(f"not ImageNet-1k WNIDs: {unknown[:5]}")
    return sorted(index[w] for w in wnids)
