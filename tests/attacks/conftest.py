"""Shared settings for the attack tests."""

from __future__ import annotations

import pytest
import torch


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
