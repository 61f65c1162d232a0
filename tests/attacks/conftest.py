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


@pytest.fixture(autouse=True, scope="module")
def _single_intra_op_thread():
    """Run these tests with one intra-op thread, restored afterwards.

    The models here are tiny: a second OpenMP thread buys little, and when other test suites
    or jobs share the 2 CPU cores, spinning OpenMP workers made the same tests up to ~40x
    slower (measured: hypothesis PGD test 27 s with 2 threads vs 0.7 s with 1 under load).
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def robust():
    """(model, clean-correct x, their y, N): the attack only runs where the model is right."""
    model = nofrost.load_model(ASSET)
    data = stratified_subset(load_dataset("cifar10-mini", "test"), N)
    x, y = data.images.float() / 255, data.targets
    with torch.no_grad():
        correct = model(x).argmax(1) == y
    return model, x[correct], y[correct], N
