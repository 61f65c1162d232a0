"""Shared settings for the attack tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import nofrost
from nofrost.data import load_dataset, stratified_subset

# A cifar_resnet10 trained with SAT by our own trainer (see tests/assets/README.md).
ASSET = Path(__file__).resolve().parents[1] / "assets" / "cifar_resnet10_sat_bn"
N = 100


@pytest.fixture(scope="module")
def robust():
    """(model, clean-correct x, their y, N): the attack only runs where the model is right."""
    model = nofrost.load_model(ASSET)
    data = stratified_subset(load_dataset("cifar10-mini", "test"), N)
    x, y = data.images.float() / 255, data.targets
    with torch.no_grad():
        correct = model(x).argmax(1) == y
    return model, x[correct], y[correct], N
