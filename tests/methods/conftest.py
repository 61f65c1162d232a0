"""Method tests run single-threaded: the machine is shared, and oversubscribed threads are
far slower than one. The setting is restored after each test so that other test folders run
as they would alone (tests/train/test_train_loop.py's accuracy threshold is tuned at the
default thread count)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
