"""The dataset registry: metadata lives with each dataset; arguments are checked against it."""

from __future__ import annotations

from pathlib import Path

import pytest
from torch.utils.data import Dataset

from nofrost.cli import main
from nofrost.data import describe_dataset, list_datasets, load_dataset
from nofrost.data.datasets import Variant, register_dataset
from nofrost.data.datasets._registry import DATASETS
from nofrost.data.info import CIFAR10_INFO


def test_every_dataset_says_what_it_is_and_what_it_takes() -> None:
    for name in list_datasets():
        entry = describe_dataset(name)
        assert entry.name == name and entry.summary and entry.splits
    assert describe_dataset("imagenet").aliases == {"test": "val"}
    assert describe_dataset("cifar10-mini").layout is None  # shipped: takes no root
    assert describe_dataset("cifar10").variants == ()


def test_a_variant_the_dataset_does_not_take_is_refused() -> None:
    with pytest.raises(ValueError, match=r"dataset 'cifar10-mini' has no variant parameter corruption=; "
                                         r"it takes none"):
        load_dataset("cifar10-mini", "test", corruption="fog")


def test_a_registered_family_is_loaded_with_checked_variants(monkeypatch) -> None:
    """A new dataset is one decorated loader: split, root and variants are checked before it runs."""
    monkeypatch.setattr(DATASETS, "_entries", dict(DATASETS._entries))  # registered for this test only
    calls = []

    @register_dataset("toy", summary="a toy", info=lambda: CIFAR10_INFO, splits=("test",), layout="any folder",
                      variants=(Variant("level", (1, 2), "how hard"),))
    def toy(root, split, *, augment, image_size, level) -> Dataset:
        calls.append((root, split, level))
        return load_dataset("cifar10-mini", "test")

    assert "toy" in list_datasets()
    assert len(load_dataset("toy", "test", root="/somewhere", level=2)) == 2000
    assert calls == [(Path("/somewhere"), "test", 2)]
    with pytest.raises(ValueError, match=r"dataset 'toy' needs level= \(how hard\); valid: 1, 2"):
        load_dataset("toy", "test", root="/somewhere")
    with pytest.raises(ValueError, match=r"level 3 is not valid for dataset 'toy'; valid: 1, 2"):
        load_dataset("toy", "test", root="/somewhere", level=3)
    with pytest.raises(ValueError, match=r"dataset 'toy' has no variant parameter size=; it takes level="):
        load_dataset("toy", "test", root="/somewhere", level=1, size=3)
    with pytest.raises(ValueError, match=r"dataset 'toy' needs root=\.\.\.; any folder"):
        load_dataset("toy", "test", level=1)
    with pytest.raises(ValueError, match="dataset 'toy' is registered twice"):
        register_dataset("toy", summary="", info=lambda: CIFAR10_INFO, splits=("test",), layout=None)(toy)
    assert len(calls) == 1


def test_nofrost_list_shows_each_dataset_with_its_splits(capsys) -> None:
    assert main(["list"]) == 0
    lines = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines()
             if line.startswith("  ")}
    for name in list_datasets():
        assert lines[name][0] == "/".join(describe_dataset(name).splits)
    assert lines["imagenet"][:2] == ["train/val", "-"]
