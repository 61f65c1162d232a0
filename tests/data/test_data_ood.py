"""The distribution-shift datasets in their published layouts, written by the tests from real images:
CIFAR-10-C (.npy files from the shipped CIFAR subset), ImageNet-C/R/A/Sketch (folders of the
shared ImageNet photos)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nofrost.data import dataset_info, load_dataset
from nofrost.data.corruptions import BENCHMARK_CORRUPTIONS, list_corruptions
from nofrost.data.info import imagenet_classes, imagenet_indices, imagenet_ood_facts

N = 12  # images per severity in the fake CIFAR-10-C (tests/conftest.py)


@pytest.fixture(scope="module")
def cifar10_c_root(fake_cifar10_c) -> Path:
    return fake_cifar10_c.root


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_cifar10_c_item_i_is_test_image_i_at_that_severity(fake_cifar10_c, mini_test, severity) -> None:
    dataset = load_dataset("cifar10-c", "test", root=fake_cifar10_c.root, corruption="fog", severity=severity)
    assert len(dataset) == N and dataset.classes == list(dataset_info("cifar10").classes)
    expected = fake_cifar10_c.expected("fog", severity)
    assert not np.array_equal(expected, fake_cifar10_c.expected("fog", severity % 5 + 1))
    for i in (0, 5, N - 1):
        image, label = dataset[i]
        assert image.shape == (3, 32, 32) and image.dtype == torch.float32
        assert torch.equal((image * 255).round().byte(), torch.from_numpy(expected[i]).permute(2, 0, 1))
        assert label == int(mini_test.targets[i])
    snow = load_dataset("cifar10-c", "test", root=fake_cifar10_c.root, corruption="snow", severity=severity)
    assert torch.equal(snow.images, torch.from_numpy(fake_cifar10_c.expected("snow", severity)).permute(0, 3, 1, 2))
    assert not torch.equal(snow.images, dataset.images)


def test_cifar10_c_reads_one_severity_through_a_memory_map(cifar10_c_root, monkeypatch) -> None:
    modes = []
    real_load = np.load
    monkeypatch.setattr(np, "load", lambda *a, **k: modes.append(k.get("mmap_mode")) or real_load(*a, **k))
    load_dataset("cifar10-c", "test", root=cifar10_c_root, corruption="fog", severity=2)
    assert modes == ["r", "r"]


def test_cifar10_c_bad_input_says_what_is_wrong(cifar10_c_root, tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no frost\.npy in .* \(corruption files there: fog, snow\); "
                                                r"expected the published CIFAR-10-C files"):
        load_dataset("cifar10-c", "test", root=cifar10_c_root, corruption="frost", severity=1)
    with pytest.raises(ValueError, match=r"corruption 'fgo' is not valid for dataset 'cifar10-c'; valid: "
                                         r"gaussian_noise, shot_noise, .*, saturate"):
        load_dataset("cifar10-c", "test", root=cifar10_c_root, corruption="fgo", severity=1)
    with pytest.raises(ValueError, match=r"severity 6 is not valid for dataset 'cifar10-c'; valid: 1, 2, 3, 4, 5"):
        load_dataset("cifar10-c", "test", root=cifar10_c_root, corruption="fog", severity=6)
    with pytest.raises(ValueError, match=r"dataset 'cifar10-c' needs severity="):
        load_dataset("cifar10-c", "test", root=cifar10_c_root, corruption="fog")
    with pytest.raises(FileNotFoundError, match="CIFAR-10-C root .* is not a folder; expected the published"):
        load_dataset("cifar10-c", "test", root=tmp_path / "absent", corruption="fog", severity=1)
    np.save(tmp_path / "fog.npy", np.zeros((10, 3, 32, 32), np.uint8))  # channels first, 2 per severity
    with pytest.raises(FileNotFoundError, match="no labels.npy"):
        load_dataset("cifar10-c", "test", root=tmp_path, corruption="fog", severity=1)
    np.save(tmp_path / "labels.npy", np.zeros(10, np.int64))
    with pytest.raises(ValueError, match=r"fog\.npy holds uint8 of shape \(10, 3, 32, 32\); expected"):
        load_dataset("cifar10-c", "test", root=tmp_path, corruption="fog", severity=1)
    np.save(tmp_path / "fog.npy", np.zeros((10, 32, 32, 3), np.uint8))
    np.save(tmp_path / "labels.npy", np.zeros(2, np.int64))  # one severity's labels, not five
    with pytest.raises(ValueError, match=r"labels\.npy holds int64 of shape \(2,\), but fog\.npy has 10 images"):
        load_dataset("cifar10-c", "test", root=tmp_path, corruption="fog", severity=1)
    with pytest.raises(ValueError, match="dataset 'cifar10' has no variant parameter corruption="):
        load_dataset("cifar10", "test", root=tmp_path, corruption="fog", severity=1)


# ---- ImageNet layouts, from the 32 shared photos (classes 0-31) ------------------------------------


def wnid_of(photo: Path) -> str:
    return photo.name.split("_")[1]


def class_of(photo: Path) -> int:
    return int(photo.name.split("_")[0])


def fill(folder: Path, photos: list[Path]) -> None:
    for photo in photos:
        (folder / wnid_of(photo)).mkdir(parents=True, exist_ok=True)
        shutil.copy(photo, folder / wnid_of(photo) / photo.name)


def test_imagenet_c_reads_severity_folders_of_wnid_folders_without_resizing(imagenet_samples, tmp_path) -> None:
    photos = imagenet_samples[:3]
    for severity in (1, 3):
        folder = tmp_path / "fog" / str(severity)
        for photo in photos:  # published ImageNet-C images are 224 x 224 JPEGs
            (folder / wnid_of(photo)).mkdir(parents=True)
            with Image.open(photo) as image:
                image.convert("RGB").resize((224, 224)).save(folder / wnid_of(photo) / photo.name, "JPEG")
    dataset = load_dataset("imagenet-c", "test", root=tmp_path, corruption="fog", severity=3)
    assert [label for _, label in dataset.samples] == [class_of(p) for p in photos]
    image, label = dataset[1]
    with Image.open(tmp_path / "fog" / "3" / wnid_of(photos[1]) / photos[1].name) as stored:
        pixels = torch.from_numpy(np.array(stored.convert("RGB"))).permute(2, 0, 1)
    assert label == class_of(photos[1]) and torch.equal((image * 255).round().byte(), pixels)
    assert not hasattr(dataset, "class_subset") and dataset_info("imagenet-c").num_classes == 1000


def test_imagenet_c_wrong_layouts_name_the_expected_one(imagenet_samples, tmp_path) -> None:
    fill(tmp_path / "fog", imagenet_samples[:2])  # wnid folders straight under the corruption
    with pytest.raises(ValueError, match=r"fog has no severity folders 1-5 \(found n01440764, n01443537\); "
                                         r"expected the published ImageNet-C folders: ROOT/<corruption>/"):
        load_dataset("imagenet-c", "test", root=tmp_path, corruption="fog", severity=1)
    with pytest.raises(FileNotFoundError, match=r"no snow/ folder in .* \(folders there: fog\); expected"):
        load_dataset("imagenet-c", "test", root=tmp_path, corruption="snow", severity=1)
    fill(tmp_path / "snow" / "2", imagenet_samples[:1])
    with pytest.raises(FileNotFoundError, match=r"no severity folder .*snow/4 \(severities there: 2\)"):
        load_dataset("imagenet-c", "test", root=tmp_path, corruption="snow", severity=4)
    (tmp_path / "snow" / "2" / "extra").mkdir()
    with pytest.raises(ValueError, match=r"class folders must be ImageNet WNIDs \(found extra\)"):
        load_dataset("imagenet-c", "test", root=tmp_path, corruption="snow", severity=2)
    with pytest.raises(FileNotFoundError, match="ImageNet-C root .* is not a folder"):
        load_dataset("imagenet-c", "test", root=tmp_path / "absent", corruption="fog", severity=1)


@pytest.mark.parametrize("name", ["imagenet-r", "imagenet-a"])
def test_imagenet_r_and_a_label_by_1000_classes_and_name_their_200(name, imagenet_samples, tmp_path) -> None:
    covered = set(imagenet_ood_facts()[f"{name.replace('-', '_')}_wnids"])
    inside = [p for p in imagenet_samples if wnid_of(p) in covered]
    assert len(inside) >= 3  # classes 0-31 include some of each subset
    fill(tmp_path, inside)
    dataset = load_dataset(name, "test", root=tmp_path)
    assert [label for _, label in dataset.samples] == [class_of(p) for p in inside]
    assert len(dataset.class_subset) == 200 and dataset.class_subset == sorted(dataset.class_subset)
    assert {class_of(p) for p in inside} <= set(dataset.class_subset)
    image, _ = dataset[0]
    assert image.shape == (3, 224, 224)
    outside = next(p for p in imagenet_samples if wnid_of(p) not in covered)
    fill(tmp_path, [outside])
    with pytest.raises(ValueError, match=rf"class folders must be WNIDs of its 200 classes \(found {wnid_of(outside)}\); "
                                         rf"expected ROOT/<wnid>/<image files>, the published {name} layout"):
        load_dataset(name, "test", root=tmp_path)


def test_imagenet_r_and_a_differ_and_map_onto_the_shared_metadata(shared_data) -> None:
    meta = json.loads((shared_data / "imagenet_meta.json").read_text())
    assert list(imagenet_classes()[0]) == meta["wnids_1k"]
    facts = imagenet_ood_facts()
    for subset in ("imagenet_r", "imagenet_a"):
        assert imagenet_indices(facts[f"{subset}_wnids"]) == sorted(meta[f"{subset}_indices_in_1k"])
        assert [meta["wnids_1k"][i] for i in meta[f"{subset}_indices_in_1k"]] == facts[f"{subset}_wnids"]
    assert facts["imagenet_r_wnids"] != facts["imagenet_a_wnids"]
    assert facts["alexnet_imagenet_c_error"] == {c: meta["alexnet_c_err"][c] for c in BENCHMARK_CORRUPTIONS}
    assert facts["alexnet_imagenet_clean_error"] == pytest.approx(1 - 0.56522)  # torchvision's published acc@1
    assert set(facts["sources"]) == {"imagenet_r_wnids", "imagenet_a_wnids", "alexnet_imagenet_c_error",
                                     "alexnet_imagenet_clean_error"}


def test_imagenet_sketch_takes_any_of_the_1000_classes(imagenet_samples, tmp_path) -> None:
    fill(tmp_path / "sketch", imagenet_samples[::8])
    dataset = load_dataset("imagenet-sketch", "test", root=tmp_path / "sketch")
    assert [label for _, label in dataset.samples] == [0, 8, 16, 24] and not hasattr(dataset, "class_subset")
    with pytest.raises(ValueError, match=r"class folders must be ImageNet WNIDs \(found sketch\); expected "
                                         r"ROOT/<wnid>/<image files>, the published imagenet-sketch layout"):
        load_dataset("imagenet-sketch", "test", root=tmp_path)  # the folder above the class folders
    with pytest.raises(ValueError, match="dataset 'imagenet-sketch' has no variant parameter severity="):
        load_dataset("imagenet-sketch", "test", root=tmp_path / "sketch", severity=1)
    assert list_corruptions()[:15] == list(BENCHMARK_CORRUPTIONS)
