"""Atomic, pickle-free training checkpoints.

A checkpoint is written to a temporary file in the same folder and renamed over the old one,
so a crash mid-write never leaves a half-written ``checkpoint.pt``. It holds only tensors and
plain Python values and is read back with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from nofrost.files import CHECKPOINT_FORMAT, atomic_torch_save

__all__ = ["CHECKPOINT_FORMAT", "atomic_torch_save", "load_checkpoint"]


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a nofrost training checkpoint, with a clear error when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}; train first or check the path")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for truncated or foreign files
        raise ValueError(
            f"{str(path)!r} is not a readable checkpoint ({type(err).__name__}: {err}). "
            "It may be truncated or corrupted; delete it to start over, or restore a copy."
        ) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{str(path)!r} is not a nofrost training checkpoint ({CHECKPOINT_FORMAT})")
    return state
