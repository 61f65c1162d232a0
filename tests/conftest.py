"""Shared fixtures: small, fast configs on the shipped cifar10-mini data."""

from __future__ import annotations

import pytest

from nofrost.config import Config, load_config

# A training run that takes seconds on 2 CPU cores but exercises every part of the loop:
# real images, augmentation, the PGD inner loop, the schedule, checkpoints and metrics.
TINY_OVERRIDES = [
    "model.width=8",
    "data.train_n=256",
    "data.eval_n=64",
    "optim.batch_size=64",
    "optim.epochs=2",
    "attack.steps=1",
    "eval.n=64",
    "runtime.device=cpu",
]


@pytest.fixture(scope="session")
def tiny_overrides() -> list[str]:
    return list(TINY_OVERRIDES)


@pytest.fixture
def tiny_config() -> Config:
    return load_config("quickstart", overrides=TINY_OVERRIDES)
