"""Writing files so that a crash never leaves a half-written one, and the names and formats of
what a run directory holds.

Every file nofrost writes into a run directory (checkpoints, weights, specs, metrics,
evaluations) goes through :func:`atomic_write`: written to a temporary file in the same folder,
flushed to disk, then renamed over the old file in one step.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

#: The ``format`` field of a training checkpoint (``checkpoint.pt``).
CHECKPOINT_FORMAT = "nofrost-checkpoint-v1"
#: Files a run directory holds from its first epoch on: a folder with any is a run's.
RUN_FILES = ("config.yaml", "metrics.jsonl", "checkpoint.pt")
#: The run directory's subfolder with the best checkpoint (``eval.select: best``), a model dir.
BEST_DIR = "best"


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call ``write(tmp)`` to fill a temporary file next to ``path``, then move it to ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; give it a normal file's mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    atomic_write(path, write)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def atomic_torch_save(obj: object, path: str | os.PathLike) -> None:
    """``torch.save(obj, path)`` atomically."""
    import torch

    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def atomic_write_npz(path: str | os.PathLike, arrays: dict) -> None:
    """Write ``arrays`` (name → NumPy array) as an ``.npz`` archive at ``path`` atomically.

    Saved through memory: ``numpy.savez`` would append ``.npz`` to the temporary file's name."""
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(buffer.getvalue()))
