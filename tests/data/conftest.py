"""Fixtures for the data tests: CIFAR-10 from the shared folder (tests/conftest.py: shared_data), the shipped subset."""

from __future__ import annotations

from pathlib import Path

import pytest

from nofrost.data import TensorImageDataset, load_dataset


@pytest.fixture(scope="session")
def cifar_npz(shared_data: Path) -> Path:
    """The shared ``cifar10_jpeg.npz`` (all of CIFAR-10 as JPEG bytes)."""
    path = shared_data / "cifar10_jpeg.npz"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return path


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
