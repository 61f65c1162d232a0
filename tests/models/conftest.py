"""Shared fixtures for the model tests."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch

CIFAR_NPZ = Path(__file__).resolve().parents[3] / "shared" / "data" / "cifar10_jpeg.npz"


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def cifar_images() -> torch.Tensor:
    """64 real CIFAR-10 test images in [0, 1], (64, 3, 32, 32), a class-balanced-ish random draw."""
    if not CIFAR_NPZ.is_file():
        pytest.skip(f"real CIFAR-10 data not found at {CIFAR_NPZ}")
    from PIL import Image

    data = np.load(CIFAR_NPZ)
    offsets, blob = data["test_offsets"], data["test_jpeg"]
    idx = np.random.RandomState(0).permutation(len(offsets) - 1)[:64]
    images = [
        np.asarray(Image.open(io.BytesIO(blob[offsets[i] : offsets[i + 1]].tobytes())).convert("RGB")) for i in idx
    ]
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div(255.0)
