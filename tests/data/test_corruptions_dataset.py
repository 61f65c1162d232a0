"""CorruptedDataset: item i is corrupted source item i with its label, generated once and cached."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from torch.utils.data import Dataset

import nofrost.data.corruptions.dataset as dataset_module
from nofrost.data import TensorImageDataset
from nofrost.data.corruptions import CorruptedDataset, corrupt, source_digest
from nofrost.data.corruptions.ops import jpeg_round_trip
from nofrost.data.imagenet import imagenet_transform


@pytest.fixture(scope="module")
def source(mini_test):
    return mini_test.subset(torch.arange(0, 1000, 50))  # 20 real test images, two per class


class ItemsOnly(Dataset):
    """A source that only has items (no images tensor, no targets), like an image folder."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, i):
        return self.inner[i]


def test_items_are_the_corrupted_source_items_with_their_labels(source):
    data = CorruptedDataset(source, "zoom_blur", 2, seed=4)
    assert len(data) == len(source) and data.classes == source.classes
    assert torch.equal(data.targets, source.targets)
    expected = corrupt(source.images.permute(0, 2, 3, 1).numpy(), "zoom_blur", 2, seed=4)
    assert torch.equal(data.images, torch.from_numpy(expected).permute(0, 3, 1, 2))
    image, label = data[7]
    assert image.dtype == torch.float32 and image.shape == (3, 32, 32) and label == int(source.targets[7])
    # an item is the same whatever dataset it sits in: its index is its identity
    single = corrupt(source.images[7:8].permute(0, 2, 3, 1).numpy(), "zoom_blur", 2, seed=4, indices=[7])
    assert torch.equal(data.images[7], torch.from_numpy(single[0]).permute(2, 0, 1))


def test_a_source_of_float_items_gives_the_same_images(source):
    tensor_based = CorruptedDataset(source, "snow", 3, seed=0)
    item_based = CorruptedDataset(ItemsOnly(source), "snow", 3, seed=0)
    assert torch.equal(tensor_based.images, item_based.images)
    assert torch.equal(tensor_based.targets, item_based.targets)
    assert source_digest(source) == source_digest(ItemsOnly(source))


def test_second_construction_reads_the_cache_without_generating(source, tmp_path, monkeypatch):
    first = CorruptedDataset(source, "glass_blur", 5, seed=2, cache_dir=tmp_path)
    assert first.cache_path.is_file() and first.cache_path.with_suffix(".json").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files

    def no_generation(*args, **kwargs):
        raise AssertionError("the cache should have been read")

    monkeypatch.setattr(dataset_module, "corrupt", no_generation)
    second = CorruptedDataset(source, "glass_blur", 5, seed=2, cache_dir=tmp_path)
    assert second.cache_path == first.cache_path
    assert torch.equal(second.images, first.images) and torch.equal(second.targets, first.targets)
    assert second.classes == first.classes
    # anything in the key changed: not the same entry, so it must generate (and here fails to)
    for changed in ({"seed": 3}, {"resolution": "imagenet"}):
        with pytest.raises(AssertionError, match="cache should have been read"):
            CorruptedDataset(source, "glass_blur", 5, cache_dir=tmp_path, **{"seed": 2, **changed})
    with pytest.raises(AssertionError, match="cache should have been read"):
        CorruptedDataset(source.subset(torch.arange(1, 20)), "glass_blur", 5, seed=2, cache_dir=tmp_path)


def test_an_entry_without_its_label_file_is_regenerated(source, tmp_path):
    first = CorruptedDataset(source, "fog", 1, cache_dir=tmp_path)
    meta = first.cache_path.with_suffix(".json")
    key = json.loads(meta.read_text())["key"]
    assert key["corruption"] == "fog" and key["severity"] == 1 and key["generator_version"] >= 1
    meta.unlink()  # as if interrupted between the two writes
    again = CorruptedDataset(source, "fog", 1, cache_dir=tmp_path)
    assert torch.equal(again.images, first.images) and meta.is_file()


def test_bad_variant_and_empty_source_are_clear_errors(source):
    with pytest.raises(ValueError, match="unknown corruption 'haze'"):
        CorruptedDataset(source, "haze", 1)
    with pytest.raises(ValueError, match="severity must be one of"):
        CorruptedDataset(source, "fog", 9)
    with pytest.raises(ValueError, match="empty dataset"):
        CorruptedDataset(source.subset(torch.arange(0)), "fog", 1)


def test_imagenet_sets_are_stored_as_the_published_jpeg_quality_85(imagenet_samples, tmp_path):
    transform = imagenet_transform(224, augment=False)
    photos = torch.stack([transform(Image.open(p).convert("RGB")) for p in imagenet_samples[:2]])
    source = TensorImageDataset(photos.mul(255).round().to(torch.uint8), torch.tensor([0, 1]), ["a", "b"])
    published = CorruptedDataset(source, "contrast", 2, resolution="imagenet", cache_dir=tmp_path)
    raw = CorruptedDataset(source, "contrast", 2, resolution="imagenet", as_published=False, cache_dir=tmp_path)
    corrupted = corrupt(source.images.permute(0, 2, 3, 1).numpy(), "contrast", 2, resolution="imagenet")
    assert torch.equal(raw.images, torch.from_numpy(corrupted).permute(0, 3, 1, 2))
    assert torch.equal(published.images, torch.from_numpy(jpeg_round_trip(corrupted, 85)).permute(0, 3, 1, 2))
    assert not torch.equal(published.images, raw.images)
    assert published.cache_path != raw.cache_path  # the storage is part of the cache key
    # CIFAR-10-C stored raw arrays: nothing to re-encode
    assert CorruptedDataset(source, "contrast", 2, resolution="cifar").jpeg_quality is None
