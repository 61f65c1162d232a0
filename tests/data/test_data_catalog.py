"""The dataset catalog: names, static info and argument errors."""

from __future__ import annotations

import dataclasses

import pytest

from nofrost.data import DatasetInfo, dataset_info, list_datasets, load_dataset


def test_list_datasets() -> None:
    assert list_datasets() == ["cifar10", "cifar10-c", "cifar10-c-gen", "cifar10-mini", "fashion-mnist", "imagenet",
                               "imagenet-a", "imagenet-c", "imagenet-c-gen", "imagenet-r", "imagenet-sketch"]


@pytest.mark.parametrize(
    ("name", "num_classes", "in_chans", "image_size", "mean", "std"),
    [
        ("cifar10", 10, 3, 32, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
        ("cifar10-mini", 10, 3, 32, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
        ("fashion-mnist", 10, 1, 28, (0.2860,), (0.3530,)),
        ("imagenet", 1000, 3, 224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    ],
)
def test_dataset_info(
    name: str, num_classes: int, in_chans: int, image_size: int, mean: tuple, std: tuple
) -> None:
    info = dataset_info(name)
    assert (info.num_classes, info.in_chans, info.image_size) == (num_classes, in_chans, image_size)
    assert (info.mean, info.std) == (mean, std)
    assert len(info.classes) == num_classes
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.num_classes = 3  # type: ignore[misc]


def test_imagenet_class_names() -> None:
    classes = dataset_info("imagenet").classes
    assert classes[:2] == ("tench", "goldfish") and classes[-1] == "toilet_tissue"
    # ImageNet's own names repeat twice: crane (bird, 134; machine, 517) and maillot (638, 639).
    assert [i for i, name in enumerate(classes) if name in ("crane", "maillot")] == [
        134,
        517,
        638,
        639,
    ]
    assert isinstance(dataset_info("cifar10"), DatasetInfo)
    assert dataset_info("cifar10").classes[0] == "airplane"


def test_unknown_name_lists_the_available_ones() -> None:
    message = (
        "unknown dataset 'cifar100'; available: cifar10, cifar10-c, cifar10-c-gen, cifar10-mini, fashion-mnist, "
        "imagenet, imagenet-a, imagenet-c, imagenet-c-gen, imagenet-r, imagenet-sketch"
    )
    with pytest.raises(ValueError, match=message):
        load_dataset("cifar100", "train")
    with pytest.raises(ValueError, match=message):
        dataset_info("cifar100")


def test_unknown_split_lists_the_allowed_ones() -> None:
    with pytest.raises(
        ValueError, match="unknown split 'val' for dataset 'cifar10-mini'; allowed: test, train"
    ):
        load_dataset("cifar10-mini", "val")


@pytest.mark.parametrize("name", ["cifar10", "fashion-mnist", "imagenet"])
def test_datasets_on_disk_need_a_root(name: str) -> None:
    with pytest.raises(ValueError, match=rf"dataset '{name}' needs root=\.\.\.; expected"):
        load_dataset(name, "train")
