"""Fixtures for the trainer tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from nofrost.config import Config
from nofrost.train import TrainResult, train
from nofrost.train import loop as loop_module


@pytest.fixture
def interrupted_then_resumed(monkeypatch):
    """``run(config, folder, after_epochs)``: train into ``folder``, stop right after epoch
    ``after_epochs``'s checkpoint is written (as a crash would), then ``--resume`` to the end."""

    def run(config: Config, folder: Path, after_epochs: int) -> TrainResult:
        real_write = loop_module._write_metrics

        def crash_after(path, history):
            real_write(path, history)
            if len(history) == after_epochs:
                raise KeyboardInterrupt

        monkeypatch.setattr(loop_module, "_write_metrics", crash_after)
        with pytest.raises(KeyboardInterrupt):
            train(config, folder, quiet=True)
        monkeypatch.setattr(loop_module, "_write_metrics", real_write)
        return train(config, folder, resume=True, quiet=True)

    return run

