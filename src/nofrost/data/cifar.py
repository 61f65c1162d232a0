"""CIFAR-10 from the official python batches, from a JPEG archive, or from the shipped subset."""

from __future__ import annotations

import pickle
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from nofrost.data.info import CIFAR10_CLASSES
from nofrost.data.jpeg_npz import load_jpeg_npz

CIFAR10_SIZE = (32, 32)
CIFAR10_LAYOUT = (
    "expected the folder cifar-10-batches-py (data_batch_1..5 and test_batch from "
    "cifar-10-python.tar.gz) or its parent, or a cifar10_jpeg.npz file (or a folder holding one)"
)
MINI_ASSET = "cifar10_mini.npz"
_BATCH_FILES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}


def load_cifar10(root: Path, split: str) -> tuple[Tensor, Tensor, tuple[str, ...]]:
    """Images (uint8 ``(N, 3, 32, 32)``), int64 labels and class names of one CIFAR-10 split.

    ``root`` is a python-batches folder (or its parent) or a JPEG ``.npz`` archive.
    """
    source = _locate(root)
    if source.is_file():
        return load_jpeg_npz(source, split, CIFAR10_SIZE)
    return (*load_python_batches(source, split), CIFAR10_CLASSES)


def load_cifar10_mini(split: str) -> tuple[Tensor, Tensor, tuple[str, ...]]:
    """The shipped stratified CIFAR-10 subset (``assets/cifar10_mini.npz``), as load_cifar10."""
    asset = resources.files(__package__).joinpath("assets", MINI_ASSET)
    with resources.as_file(asset) as path:
        if not path.is_file():
            raise FileNotFoundError(
                f"package asset {path} is missing; build it with scripts/make_cifar10_mini.py"
            )
        return load_jpeg_npz(path, split, CIFAR10_SIZE)


def _locate(root: Path) -> Path:
    """The archive file or python-batches folder that ``root`` points at."""
    if root.is_file():
        return root
    if not root.is_dir():
        raise FileNotFoundError(f"CIFAR-10 root {root} does not exist; {CIFAR10_LAYOUT}")
    for folder in (root, root / "cifar-10-batches-py"):
        if any((folder / name).is_file() for names in _BATCH_FILES.values() for name in names):
            return folder
    if (root / "cifar10_jpeg.npz").is_file():
        return root / "cifar10_jpeg.npz"
    raise FileNotFoundError(f"no CIFAR-10 files in {root}; {CIFAR10_LAYOUT}")


def load_python_batches(folder: Path, split: str) -> tuple[Tensor, Tensor]:
    """Read and concatenate the official pickled batches of ``split`` from ``folder``."""
    paths = [folder / name for name in _BATCH_FILES[split]]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} lacks {', '.join(missing)}; {CIFAR10_LAYOUT}")
    batches = [_read_batch(p) for p in paths]
    data = np.concatenate([b[0] for b in batches])
    labels = np.concatenate([b[1] for b in batches])
    return torch.from_numpy(data.reshape(-1, 3, *CIFAR10_SIZE)), torch.from_numpy(labels)


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch: ``b'data'``, uint8 ``(N, 3072)`` (R, G, B planes, row-major), ``b'labels'``."""
    try:
        with path.open("rb") as f:
            batch = _BatchUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as err:
        raise ValueError(f"{path} is not a CIFAR-10 python batch: {err}") from err
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise ValueError(
            f"{path} is not a CIFAR-10 python batch: expected a dict with b'data' and b'labels'"
        )
    data, labels = batch[b"data"], np.asarray(batch[b"labels"])
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != 3072
    ):
        shape = getattr(data, "shape", None)
        raise ValueError(
            f"{path}: b'data' must be a uint8 array of shape (N, 3072), "
            f"got {type(data).__name__} {shape}"
        )
    if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"{path}: b'labels' must hold {len(data)} integers, got {labels.dtype} {labels.shape}"
        )
    if len(labels) and not 0 <= labels.min() <= labels.max() < len(CIFAR10_CLASSES):
        raise ValueError(
            f"{path}: labels must lie in [0, 10), got [{labels.min()}, {labels.max()}]"
        )
    return data, labels.astype(np.int64)


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles only what CIFAR batches hold (dicts, lists, bytes, numpy arrays), never code."""

    _ALLOWED = frozenset(
        {
            ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store bytes
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.numeric", "_frombuffer"),
            ("numpy._core.numeric", "_frombuffer"),
        }
    )

    def find_class(self, module: str, name: str) -> type:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: not part of a CIFAR batch"
            )
        return super().find_class(module, name)
