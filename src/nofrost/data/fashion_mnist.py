"""Fashion-MNIST from its IDX files (plain or gzip-compressed)."""

from __future__ import annotations

import gzip
import zlib
from math import prod
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from nofrost.data.info import FASHION_MNIST_CLASSES

FASHION_MNIST_LAYOUT = (
    "expected {train,t10k}-images-idx3-ubyte and {train,t10k}-labels-idx1-ubyte, "
    "each optionally gzip-compressed (.gz)"
)
_PREFIX = {"train": "train", "test": "t10k"}
_IMAGE_SIZE = (28, 28)


def load_fashion_mnist(root: Path, split: str) -> tuple[Tensor, Tensor, tuple[str, ...]]:
    """Images (uint8 ``(N, 1, 28, 28)``), int64 labels and class names of one split."""
    if not root.is_dir():
        raise FileNotFoundError(
            f"Fashion-MNIST root {root} is not a folder; {FASHION_MNIST_LAYOUT}"
        )
    prefix = _PREFIX[split]
    images_path = _find(root, f"{prefix}-images-idx3-ubyte")
    labels_path = _find(root, f"{prefix}-labels-idx1-ubyte")
    images, labels = read_idx(images_path, ndim=3), read_idx(labels_path, ndim=1)
    if images.shape[1:] != _IMAGE_SIZE:
        raise ValueError(
            f"{images_path}: images are {images.shape[1:]} pixels, expected {_IMAGE_SIZE}"
        )
    if labels.shape != images.shape[:1]:
        raise ValueError(
            f"{labels_path} holds {len(labels)} labels but {images_path} {len(images)} images"
        )
    if len(labels) and labels.max() >= len(FASHION_MNIST_CLASSES):
        raise ValueError(f"{labels_path}: labels must lie in [0, 10), found {labels.max()}")
    return (
        torch.from_numpy(images[:, None]),
        torch.from_numpy(labels.astype(np.int64)),
        FASHION_MNIST_CLASSES,
    )


def _find(root: Path, stem: str) -> Path:
    for path in (root / stem, root / f"{stem}.gz"):
        if path.is_file():
            return path
    raise FileNotFoundError(f"no {stem} or {stem}.gz in {root}; {FASHION_MNIST_LAYOUT}")


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """An unsigned-byte IDX file (``.gz`` decompressed) of ``ndim`` dimensions as a uint8 array.

    Layout: magic ``0x00 0x00 0x08 ndim``, then ``ndim`` big-endian uint32 sizes, then the bytes.
    """
    raw = _read(path)
    header = 4 + 4 * ndim
    expected_magic = 0x0800 | ndim
    if len(raw) < header:
        raise ValueError(
            f"{path}: {len(raw)} bytes is too short for an IDX header of {header} bytes"
        )
    magic = int.from_bytes(raw[:4], "big")
    if magic != expected_magic:
        raise ValueError(
            f"{path}: bad IDX magic number 0x{magic:08x}, expected 0x{expected_magic:08x} "
            f"(unsigned bytes, {ndim}-D)"
        )
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    if len(raw) - header != prod(shape):
        raise ValueError(
            f"{path}: header promises shape {shape} ({prod(shape)} bytes) but {len(raw) - header} "
            "bytes follow (file truncated?)"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


def _read(path: Path) -> bytes:
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        return gzip.decompress(path.read_bytes())
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(f"{path} is not a readable gzip file: {err}") from err
