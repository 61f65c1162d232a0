"""CIFAR-10-C in its published files (Hendrycks & Dietterich, ICLR 2019; zenodo record 2535967).

``ROOT/<corruption>.npy`` holds 50,000 uint8 images of 32 x 32 x 3, severity-major: rows
``(s-1)*10000 .. s*10000-1`` are the 10,000 CIFAR-10 test images, in test-set order, at
severity ``s``; ``ROOT/labels.npy`` holds their 50,000 labels (the test labels five times).
Files are memory-mapped, so loading one severity reads only its 10,000 rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from nofrost.data.datasets._registry import CORRUPTION_VARIANTS, native_size, register_dataset
from nofrost.data.info import CIFAR10_CLASSES, CIFAR10_INFO
from nofrost.data.tensor_dataset import TensorImageDataset

CIFAR10_C_LAYOUT = (
    "expected the published CIFAR-10-C files: ROOT/<corruption>.npy (uint8, 5 x N images of "
    "32 x 32 x 3, severity-major: severity s is rows (s-1)*N .. s*N-1; N = 10,000) and ROOT/labels.npy "
    "(5 x N labels)"
)
_SHAPE = (32, 32, 3)


@register_dataset("cifar10-c", summary="CIFAR-10-C, the published .npy files (Hendrycks & Dietterich 2019)",
                  info=lambda: CIFAR10_INFO, splits=("test",), layout=CIFAR10_C_LAYOUT,
                  variants=CORRUPTION_VARIANTS, distribution_shift=True)
def cifar10_c(root: Path, split: str, *, augment: bool, image_size: int | None, corruption: str,
              severity: int) -> TensorImageDataset:
    """Item i: CIFAR-10 test image i under ``corruption`` at ``severity``, with its label."""
    native_size("cifar10-c", CIFAR10_INFO, image_size)
    return TensorImageDataset(*read_cifar10_c(root, corruption, severity), CIFAR10_CLASSES, augment=augment)


def read_cifar10_c(root: Path, corruption: str, severity: int) -> tuple[Tensor, Tensor]:
    """Images (uint8 ``(N, 3, 32, 32)``) and int64 labels of one corruption and severity."""
    if not root.is_dir():
        raise FileNotFoundError(f"CIFAR-10-C root {root} is not a folder; {CIFAR10_C_LAYOUT}")
    path, labels_path = root / f"{corruption}.npy", root / "labels.npy"
    if not path.is_file():
        present = sorted(p.stem for p in root.glob("*.npy") if p.stem != "labels")
        raise FileNotFoundError(f"no {path.name} in {root} (corruption files there: {', '.join(present) or 'none'}); "
                                f"{CIFAR10_C_LAYOUT}")
    if not labels_path.is_file():
        raise FileNotFoundError(f"no labels.npy in {root}; {CIFAR10_C_LAYOUT}")
    images, labels = _memory_map(path), _memory_map(labels_path)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != _SHAPE or len(images) % 5 or not len(images):
        raise ValueError(f"{path} holds {images.dtype} of shape {images.shape}; {CIFAR10_C_LAYOUT}")
    if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{labels_path} holds {labels.dtype} of shape {labels.shape}, but {path.name} has "
                         f"{len(images)} images; {CIFAR10_C_LAYOUT}")
    per_severity = len(images) // 5
    rows = slice((severity - 1) * per_severity, severity * per_severity)
    block = torch.from_numpy(np.array(images[rows].transpose(0, 3, 1, 2), order="C"))  # reads these rows only
    targets = torch.from_numpy(np.array(labels[rows], dtype=np.int64))
    if not 0 <= int(targets.min()) <= int(targets.max()) < len(CIFAR10_CLASSES):
        raise ValueError(f"{labels_path}: labels must lie in [0, 10), got [{int(targets.min())}, {int(targets.max())}]")
    return block, targets


def _memory_map(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise ValueError(f"{path} is not a readable .npy array ({err}); {CIFAR10_C_LAYOUT}") from err
