"""CIFAR-10: the shipped mini subset, the shared JPEG archive and the official python batches."""

from __future__ import annotations

import io
import pickle
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nofrost.data import TensorImageDataset, dataset_info, load_dataset
from nofrost.data.jpeg_npz import read_jpeg_split

CLASSES = list(dataset_info("cifar10").classes)


def pil_decode(jpeg: bytes) -> torch.Tensor:
    """Reference decoder: PIL, as the shared data README suggests; CHW uint8."""
    array = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


def mini_asset_path() -> Path:
    return Path(str(resources.files("nofrost.data").joinpath("assets", "cifar10_mini.npz")))


def test_mini_asset_is_at_most_12_mb() -> None:
    assert mini_asset_path().stat().st_size <= 12_000_000


def test_mini_sizes_balance_and_pixels(
    mini_train: TensorImageDataset, mini_test: TensorImageDataset
) -> None:
    for dataset, n, per_class in ((mini_train, 10_000, 1000), (mini_test, 2_000, 200)):
        assert len(dataset) == n
        assert dataset.images.shape == (n, 3, 32, 32) and dataset.images.dtype == torch.uint8
        assert dataset.targets.dtype == torch.int64
        assert torch.bincount(dataset.targets, minlength=10).tolist() == [per_class] * 10
        assert dataset.classes == CLASSES
        # Stored shuffled, not sorted by class.
        assert len(set(dataset.targets[:50].tolist())) >= 8
        image, label = dataset[3]
        assert image.dtype == torch.float32 and image.shape == (3, 32, 32)
        assert 0.0 <= image.min() and image.max() <= 1.0 and image.max() > 0.5
        assert isinstance(label, int) and label == int(dataset.targets[3])


@pytest.mark.parametrize("split", ["train", "test"])
def test_mini_is_a_subset_of_the_shared_archive(
    split: str, cifar_npz: Path, mini_train: TensorImageDataset, mini_test: TensorImageDataset
) -> None:
    mini = read_jpeg_split(mini_asset_path(), split)
    shared = read_jpeg_split(cifar_npz, split)
    shared_index = {shared.image_bytes(i): i for i in range(len(shared))}
    sources = [
        shared_index[mini.image_bytes(i)] for i in range(len(mini))
    ]  # KeyError: not from shared
    assert len(set(sources)) == len(mini)
    assert np.array_equal(shared.labels[sources], mini.labels)
    decoded = mini_train if split == "train" else mini_test
    for i in range(0, len(mini), len(mini) // 40):
        assert torch.equal(decoded.images[i], pil_decode(shared.image_bytes(sources[i])))


def test_mini_rejects_a_root_and_other_sizes() -> None:
    with pytest.raises(ValueError, match="takes no root"):
        load_dataset("cifar10-mini", "train", root="/data/cifar10")
    with pytest.raises(ValueError, match="image_size must be None or 32"):
        load_dataset("cifar10-mini", "test", image_size=64)


def test_cifar10_from_the_shared_archive(cifar_npz: Path) -> None:
    train = load_dataset("cifar10", "train", root=str(cifar_npz))
    test = load_dataset("cifar10", "test", root=cifar_npz.parent)  # a folder holding the archive
    assert isinstance(train, TensorImageDataset) and isinstance(test, TensorImageDataset)
    assert (len(train), len(test)) == (50_000, 10_000)
    assert torch.bincount(train.targets).tolist() == [5000] * 10
    assert torch.bincount(test.targets).tolist() == [1000] * 10
    shared = read_jpeg_split(cifar_npz, "train")
    # The shared archive is sorted by class: 5,000 airplanes, then 5,000 automobiles, ...
    for index, name in ((0, "airplane"), (5_000, "automobile"), (27_123, "dog"), (49_999, "truck")):
        assert train.classes[train[index][1]] == name
        assert torch.equal(train.images[index], pil_decode(shared.image_bytes(index)))


def write_python_batches(folder: Path, images: torch.Tensor, labels: torch.Tensor) -> None:
    """The official cifar-10-batches-py layout: 5 train batches, a test batch and batches.meta."""
    folder.mkdir(parents=True)
    rows = images.reshape(len(images), 3072).numpy()  # R, G, B planes, each row-major
    chunks = np.array_split(np.arange(len(images)), 6)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name, chunk in zip(names, chunks):
        batch = {
            b"batch_label": name.encode(),
            b"labels": labels[chunk].tolist(),
            b"data": rows[chunk],
            b"filenames": [f"{i}.png".encode() for i in chunk],
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {b"label_names": [c.encode() for c in CLASSES], b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))


def test_cifar10_from_official_python_batches(
    tmp_path: Path, mini_test: TensorImageDataset
) -> None:
    images, labels = mini_test.images[:600], mini_test.targets[:600]
    folder = tmp_path / "cifar-10-batches-py"
    write_python_batches(folder, images, labels)
    train = load_dataset("cifar10", "train", root=folder)
    test = load_dataset("cifar10", "test", root=tmp_path)  # the parent folder works too
    assert isinstance(train, TensorImageDataset) and isinstance(test, TensorImageDataset)
    assert torch.equal(train.images, images[:500]) and torch.equal(train.targets, labels[:500])
    assert torch.equal(test.images, images[500:]) and torch.equal(test.targets, labels[500:])
    assert train.classes == CLASSES


def test_cifar10_missing_root_or_files(tmp_path: Path, mini_test: TensorImageDataset) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(
        FileNotFoundError, match=r"nowhere does not exist; .*data_batch_1\.\.5 and test_batch"
    ):
        load_dataset("cifar10", "train", root=missing)
    with pytest.raises(
        FileNotFoundError, match=r"no CIFAR-10 files in .*; expected .* or a cifar10_jpeg\.npz file"
    ):
        load_dataset("cifar10", "train", root=tmp_path)
    folder = tmp_path / "batches"
    write_python_batches(folder, mini_test.images[:60], mini_test.targets[:60])
    (folder / "data_batch_4").unlink()
    with pytest.raises(FileNotFoundError, match="batches lacks data_batch_4"):
        load_dataset("cifar10", "train", root=folder)
    test = load_dataset("cifar10", "test", root=folder)
    assert isinstance(test, TensorImageDataset) and len(test) == 10
    with pytest.raises(ValueError, match="needs root="):
        load_dataset("cifar10", "train")


def test_cifar10_malformed_python_batch(tmp_path: Path, mini_test: TensorImageDataset) -> None:
    folder = tmp_path / "batches"
    write_python_batches(folder, mini_test.images[:60], mini_test.targets[:60])
    wrong_shape = {b"data": np.zeros((4, 1024), np.uint8), b"labels": [0] * 4}
    (folder / "test_batch").write_bytes(pickle.dumps(wrong_shape))
    with pytest.raises(
        ValueError, match=r"test_batch: b'data' must be a uint8 array of shape \(N, 3072\)"
    ):
        load_dataset("cifar10", "test", root=folder)
    # A pickle that would run code is refused, not executed.
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": print}))
    with pytest.raises(
        ValueError,
        match=r"test_batch is not a CIFAR-10 python batch: refusing to load builtins\.print",
    ):
        load_dataset("cifar10", "test", root=folder)


def test_cifar10_corrupted_archives(tmp_path: Path) -> None:
    asset = mini_asset_path().read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(asset[: len(asset) // 2])
    with pytest.raises(ValueError, match=r"truncated\.npz is not a readable \.npz archive"):
        load_dataset("cifar10", "test", root=truncated)

    with np.load(mini_asset_path()) as archive:
        arrays = dict(archive)
    arrays["test_offsets"] = arrays["test_offsets"][:-5]  # offsets no longer cover the bytes
    bad_offsets = tmp_path / "bad_offsets.npz"
    np.savez(bad_offsets, **arrays)
    with pytest.raises(ValueError, match=r"bad_offsets\.npz \(test split\): offsets must increase"):
        load_dataset("cifar10", "test", root=bad_offsets)

    with np.load(mini_asset_path()) as archive:
        arrays = dict(archive)
    start, end = arrays["test_offsets"][3:5]
    arrays["test_jpeg"] = arrays["test_jpeg"].copy()
    arrays["test_jpeg"][start:end] = 7  # image 3 is no longer a JPEG file
    bad_jpeg = tmp_path / "bad_jpeg.npz"
    np.savez(bad_jpeg, **arrays)
    with pytest.raises(
        ValueError, match=r"bad_jpeg\.npz \(test split\): image 3 is not a valid JPEG file"
    ):
        load_dataset("cifar10", "test", root=bad_jpeg)

    del arrays["y_test"]
    no_labels = tmp_path / "no_labels.npz"
    np.savez(no_labels, **arrays)
    with pytest.raises(ValueError, match=r"no_labels\.npz lacks the arrays \['y_test'\]"):
        load_dataset("cifar10", "test", root=no_labels)
