"""Reading and writing ``.npz`` archives of JPEG-encoded images (the ``cifar10_jpeg.npz`` layout).

Per split ``s`` in ``train``/``test`` the archive holds ``s_jpeg`` (uint8, all JPEG files
concatenated), ``s_offsets`` (int64, N + 1: image ``i`` is ``s_jpeg[s_offsets[i]:s_offsets[i+1]]``)
and ``y_s`` (int64 labels), plus ``classes`` (the class names).
"""

from __future__ import annotations

import functools
import io
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor


@dataclass(frozen=True)
class JpegSplit:
    """One split of a JPEG archive, validated but not decoded."""

    jpeg: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)

    def image_bytes(self, index: int) -> bytes:
        """The JPEG file of image ``index``."""
        return self.jpeg[self.offsets[index] : self.offsets[index + 1]].tobytes()


def split_keys(split: str) -> tuple[str, str, str]:
    """The archive keys of ``split``: JPEG bytes, offsets, labels."""
    return f"{split}_jpeg", f"{split}_offsets", f"y_{split}"


def pack_jpegs(files: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate JPEG files into the archive's ``(s_jpeg, s_offsets)`` pair."""
    sizes = np.fromiter((len(f) for f in files), dtype=np.int64, count=len(files))
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    return np.frombuffer(b"".join(files), dtype=np.uint8), offsets


def read_jpeg_split(path: Path, split: str) -> JpegSplit:
    """Load and check one split of a JPEG archive.

    Raises FileNotFoundError if ``path`` is missing and ValueError if it is not a readable
    ``.npz`` or its arrays do not fit the layout described in this module's docstring.
    """
    _require_file(path)
    jpeg_key, offsets_key, labels_key = split_keys(split)
    keys = (jpeg_key, offsets_key, labels_key, "classes")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in keys if k not in archive.files]
            arrays = {k: archive[k] for k in keys if k in archive.files}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error) as err:
        raise ValueError(f"{path} is not a readable .npz archive: {err}") from err
    if missing:
        raise ValueError(f"{path} lacks the arrays {missing}; expected keys {list(keys)}")
    jpeg, offsets, labels, classes = (arrays[k] for k in keys)
    _check_layout(path, split, jpeg, offsets, labels, classes)
    return JpegSplit(
        jpeg, offsets.astype(np.int64), labels.astype(np.int64), tuple(map(str, classes))
    )


def _require_file(path: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(
            f"no JPEG archive at {path}: expected a .npz file laid out like cifar10_jpeg.npz"
        )


def _check_layout(
    path: Path,
    split: str,
    jpeg: np.ndarray,
    offsets: np.ndarray,
    labels: np.ndarray,
    classes: np.ndarray,
) -> None:
    where = f"{path} ({split} split)"
    if jpeg.dtype != np.uint8 or jpeg.ndim != 1:
        raise ValueError(
            f"{where}: JPEG bytes must be 1-D uint8, got {jpeg.dtype} of shape {jpeg.shape}"
        )
    if offsets.ndim != 1 or not np.issubdtype(offsets.dtype, np.integer) or len(offsets) < 1:
        raise ValueError(
            f"{where}: offsets must be a non-empty 1-D integer array, "
            f"got {offsets.dtype} {offsets.shape}"
        )
    if offsets[0] != 0 or offsets[-1] != len(jpeg) or np.any(np.diff(offsets) <= 0):
        raise ValueError(
            f"{where}: offsets must increase strictly from 0 to the byte count {len(jpeg)}, "
            f"got {offsets[0]} .. {offsets[-1]} (archive truncated or damaged?)"
        )
    if labels.shape != (len(offsets) - 1,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"{where}: expected {len(offsets) - 1} integer labels (one per image), "
            f"got {labels.dtype} of shape {labels.shape}"
        )
    if classes.ndim != 1 or classes.dtype.kind != "U":
        raise ValueError(
            f"{where}: classes must be a 1-D array of names, got {classes.dtype} {classes.shape}"
        )
    if len(labels) and not 0 <= labels.min() <= labels.max() < len(classes):
        raise ValueError(
            f"{where}: labels must lie in [0, {len(classes)}), got [{labels.min()}, {labels.max()}]"
        )


def decode_split(data: JpegSplit, size: tuple[int, int], where: str) -> Tensor:
    """Decode all images of ``data`` to one uint8 ``(N, 3, H, W)`` tensor; each must be ``size``."""
    images = np.empty((len(data), 3, *size), dtype=np.uint8)
    blob = data.jpeg.tobytes()
    bounds = data.offsets.tolist()
    for i in range(len(data)):
        images[i] = decode_jpeg(blob[bounds[i] : bounds[i + 1]], size, f"{where}: image {i}")
    return torch.from_numpy(images)


def decode_jpeg(jpeg: bytes, size: tuple[int, int], where: str) -> np.ndarray:
    """One JPEG file as a uint8 ``(3, H, W)`` RGB array; ValueError unless it is ``size``."""
    try:
        with Image.open(io.BytesIO(jpeg), formats=["JPEG"]) as image:
            rgb = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
    except (OSError, SyntaxError, ValueError) as err:  # PIL's errors for damaged files
        raise ValueError(f"{where} is not a valid JPEG file: {err}") from err
    if rgb.shape[:2] != size:
        raise ValueError(
            f"{where} is {rgb.shape[0]}x{rgb.shape[1]} pixels, expected {size[0]}x{size[1]}"
        )
    return rgb.transpose(2, 0, 1)


def load_jpeg_npz(
    path: Path, split: str, size: tuple[int, int]
) -> tuple[Tensor, Tensor, tuple[str, ...]]:
    """Images (uint8 ``(N, 3, H, W)``), labels (int64) and class names of one split.

    Each split is decoded once per process (cached by path, size and modification time);
    every call returns fresh copies, so callers may modify them.
    """
    _require_file(path)
    stat = path.stat()
    images, labels, classes = _load_cached(
        str(path.resolve()), split, size, stat.st_mtime_ns, stat.st_size
    )
    return images.clone(), labels.clone(), classes


@functools.lru_cache(maxsize=4)
def _load_cached(
    path: str, split: str, size: tuple[int, int], _mtime_ns: int, _nbytes: int
) -> tuple[Tensor, Tensor, tuple[str, ...]]:
    data = read_jpeg_split(Path(path), split)
    images = decode_split(data, size, where=f"{path} ({split} split)")
    return images, torch.from_numpy(data.labels), data.classes
