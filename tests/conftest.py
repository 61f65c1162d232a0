"""Shared fixtures: small, fast configs on the shipped cifar10-mini data, and the thread count.

Every test runs with ``NOFROST_TEST_THREADS`` intra-op threads (default 1), and so does every
process a test starts. Float reductions split differently across threads, so a test that only
passes at one thread count compares results of different kernels too exactly: run the suite
at 1 and at 2 threads (docs/testing.md) to catch that before a user on other hardware does.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from nofrost.config import Config, load_config


TEST_THREADS = 1


def pytest_configure(config: pytest.Config) -> None:
    global TEST_THREADS
    text = os.environ.get("NOFROST_TEST_THREADS", "1")
    if not text.isdigit() or int(text) < 1:
        raise pytest.UsageError(f"NOFROST_TEST_THREADS must be a positive integer, got {text!r}")
    TEST_THREADS = int(text)
    # Processes started by tests (the CLI, torchrun workers unless they set their own) follow it too.
    os.environ["OMP_NUM_THREADS"] = text
    torch.set_num_threads(TEST_THREADS)


@pytest.fixture(autouse=True)
def _test_threads_per_test():
    """Each test starts at TEST_THREADS threads, whatever the test before it set."""
    torch.set_num_threads(TEST_THREADS)
    yield
    torch.set_num_threads(TEST_THREADS)


def pytest_report_header() -> str:
    return f"nofrost: {TEST_THREADS} intra-op thread(s) (NOFROST_TEST_THREADS)"


# A training run that takes seconds on 2 CPU cores but exercises every part of the loop:
# real images, augmentation, the PGD inner loop, the schedule, checkpoints and metrics, in fp32
# (the quickstart preset's CPU speed settings are tested on their own).
TINY_OVERRIDES = [
    "data.augment=true",
    "runtime.cpu_bf16=false",
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



SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``<repo>/../shared/data``; tests that need it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (expected next to the repository)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def imagenet_samples(shared_data: Path) -> list[Path]:
    """The 32 real ImageNet photos ``NNN_<wnid>_<name>.JPEG`` of classes 0-31."""
    files = sorted((shared_data / "imagenet-samples").glob("*.JPEG"))
    if len(files) != 32:
        pytest.skip(f"expected 32 photos in {shared_data / 'imagenet-samples'}, found {len(files)}")
    return files


@pytest.fixture(scope="session")
def fake_cifar10_c(tmp_path_factory):
    """A CIFAR-10-C root in the published layout, from the first 12 shipped test images: fog and
    snow, 5 severities each (a stand-in corruption that differs per severity and between the
    two, so rows can be told apart), severity-major NHWC uint8, and labels.npy (the 12 labels
    five times). ``.expected(name, severity)`` gives the NHWC images of one set."""
    from types import SimpleNamespace

    import numpy as np

    from nofrost.data import load_dataset

    test = load_dataset("cifar10-mini", "test")
    clean = test.images[:12].permute(0, 2, 3, 1).numpy()

    def expected(name: str, severity: int):
        shifted = np.clip(clean.astype(np.int16) + 20 * severity - 60, 0, 255).astype(np.uint8)
        return shifted // {"fog": 1, "snow": 2}[name]

    root = tmp_path_factory.mktemp("CIFAR-10-C")
    for name in ("fog", "snow"):
        np.save(root / f"{name}.npy", np.concatenate([expected(name, s) for s in range(1, 6)]))
    labels = test.targets[:12].numpy()
    np.save(root / "labels.npy", np.tile(labels, 5))
    return SimpleNamespace(root=root, n=12, labels=labels, expected=expected)
