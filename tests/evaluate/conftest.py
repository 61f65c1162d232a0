"""Shared settings for the evaluation tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _single_intra_op_thread():
    """Run these tests with one intra-op thread, restored afterwards.

    The models are small and the 2 CPU cores are shared with other jobs: oversubscribed
    OpenMP threads made such tests several times slower than one thread.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
