"""Fixtures for the data tests: the real data in the shared folder next to the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from nofrost.data import TensorImageDataset, load_dataset

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``<repo>/../shared/data``; tests that need it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (expected next to the repository)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def cifar_npz(shared_data: Path) -> Path:
    """The shared ``cifar10_jpeg.npz`` (all of CIFAR-10 as JPEG bytes)."""
    path = shared_data / "cifar10_jpeg.npz"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return path


@pytest.fixture(scope="session")
def imagenet_samples(shared_data: Path) -> list[Path]:
    """The 32 real ImageNet photos ``NNN_<wnid>_<name>.JPEG`` of classes 0-31."""
    files = sorted((shared_data / "imagenet-samples").glob("*.JPEG"))
    if len(files) != 32:
        pytest.skip(f"expected 32 photos in {shared_data / 'imagenet-samples'}, found {len(files)}")
    return files


@pytest.fixture(scope="session")
def mini_train() -> TensorImageDataset:
    """The shipped cifar10-mini training split (loaded once per session; do not modify)."""
    dataset = load_dataset("cifar10-mini", "train")
    assert isinstance(dataset, TensorImageDataset)
    return dataset


@pytest.fixture(scope="session")
def mini_test() -> TensorImageDataset:
    """The shipped cifar10-mini test split (loaded once per session; do not modify)."""
    dataset = load_dataset("cifar10-mini", "test")
    assert isinstance(dataset, TensorImageDataset)
    return dataset
