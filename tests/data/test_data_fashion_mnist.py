"""Fashion-MNIST: IDX files written from real (grayscale CIFAR) images, and the system copy."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from nofrost.data import TensorImageDataset, dataset_info, load_dataset

SYSTEM_COPY = Path("/usr/share/datasets/fashion-mnist")


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 array: magic 0x0000 08 <ndim>, big-endian uint32 sizes, data."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def write_split(
    folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray, gz: bool
) -> None:
    suffix = ".gz" if gz else ""
    for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
        data = idx_bytes(array)
        (folder / f"{prefix}-{kind}-ubyte{suffix}").write_bytes(gzip.compress(data) if gz else data)


def gray_crops(dataset: TensorImageDataset, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Real 28x28 grayscale images: the centre of the first ``n`` CIFAR images, ITU-R 601 luma."""
    rgb = dataset.images[:n, :, 2:30, 2:30].double()
    luma = 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]
    return luma.round().to(torch.uint8).numpy(), dataset.targets[:n].numpy().astype(np.uint8)


@pytest.fixture
def idx_folder(
    tmp_path: Path, mini_test: TensorImageDataset
) -> tuple[Path, np.ndarray, np.ndarray]:
    """A folder with a gzip-compressed train split (300 images) and a plain test split (100)."""
    images, labels = gray_crops(mini_test, 400)
    write_split(tmp_path, "train", images[:300], labels[:300], gz=True)
    write_split(tmp_path, "t10k", images[300:], labels[300:], gz=False)
    return tmp_path, images, labels


def test_loads_gzip_and_plain_idx(idx_folder: tuple[Path, np.ndarray, np.ndarray]) -> None:
    folder, images, labels = idx_folder
    train = load_dataset("fashion-mnist", "train", root=folder)
    test = load_dataset("fashion-mnist", "test", root=str(folder))
    for dataset, sl in ((train, slice(0, 300)), (test, slice(300, 400))):
        assert isinstance(dataset, TensorImageDataset)
        assert dataset.images.shape == (len(images[sl]), 1, 28, 28)
        assert np.array_equal(dataset.images[:, 0].numpy(), images[sl])
        assert np.array_equal(dataset.targets.numpy(), labels[sl])
        assert dataset.classes == list(dataset_info("fashion-mnist").classes)
    image, label = test[7]
    assert image.shape == (1, 28, 28) and image.dtype == torch.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert label == int(labels[307])


@pytest.mark.skipif(
    not SYSTEM_COPY.is_dir(), reason=f"{SYSTEM_COPY} absent (apt-get install dataset-fashion-mnist)"
)
def test_system_fashion_mnist() -> None:
    train = load_dataset("fashion-mnist", "train", root=SYSTEM_COPY)
    test = load_dataset("fashion-mnist", "test", root=SYSTEM_COPY)
    assert isinstance(train, TensorImageDataset) and isinstance(test, TensorImageDataset)
    assert torch.bincount(train.targets).tolist() == [6000] * 10
    assert torch.bincount(test.targets).tolist() == [1000] * 10
    mean = train.images.double().mean().item() / 255
    assert abs(mean - dataset_info("fashion-mnist").mean[0]) < 1e-3


def test_missing_root_and_files(
    tmp_path: Path, idx_folder: tuple[Path, np.ndarray, np.ndarray]
) -> None:
    with pytest.raises(
        FileNotFoundError, match=r"absent is not a folder; expected \{train,t10k\}-images-idx3"
    ):
        load_dataset("fashion-mnist", "train", root=tmp_path / "absent")
    folder, _, _ = idx_folder
    (folder / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(
        FileNotFoundError, match=r"no t10k-labels-idx1-ubyte or t10k-labels-idx1-ubyte.gz in .*"
    ):
        load_dataset("fashion-mnist", "test", root=folder)


def test_malformed_idx_files(idx_folder: tuple[Path, np.ndarray, np.ndarray]) -> None:
    folder, images, _ = idx_folder
    path = folder / "t10k-images-idx3-ubyte"
    good = path.read_bytes()

    path.write_bytes(b"\x00\x00\x08\x01" + good[4:])  # a 1-D magic on an image file
    with pytest.raises(
        ValueError,
        match="t10k-images-idx3-ubyte: bad IDX magic number 0x00000801, expected 0x00000803",
    ):
        load_dataset("fashion-mnist", "test", root=folder)

    path.write_bytes(good[:-100])
    with pytest.raises(
        ValueError, match=r"header promises shape \(100, 28, 28\) .* \(file truncated\?\)"
    ):
        load_dataset("fashion-mnist", "test", root=folder)

    path.write_bytes(idx_bytes(np.zeros((100, 32, 32), np.uint8)))
    with pytest.raises(ValueError, match=r"images are \(32, 32\) pixels, expected \(28, 28\)"):
        load_dataset("fashion-mnist", "test", root=folder)

    path.write_bytes(idx_bytes(images[:99]))
    with pytest.raises(
        ValueError, match=r"t10k-labels-idx1-ubyte holds 100 labels but .* 99 images"
    ):
        load_dataset("fashion-mnist", "test", root=folder)

    (folder / "train-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(
        ValueError, match=r"train-labels-idx1-ubyte\.gz is not a readable gzip file"
    ):
        load_dataset("fashion-mnist", "train", root=folder)
