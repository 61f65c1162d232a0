"""A dataset with one generated corruption at one severity, generated once and cached on disk."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from nofrost.data.corruptions.constants import SAVED_JPEG_QUALITY
from nofrost.data.corruptions.ops import jpeg_round_trip

from nofrost.data.corruptions.generate import GENERATOR_VERSION, check_variant, corrupt
from nofrost.data.subset import dataset_targets
from nofrost.data.tensor_dataset import TensorImageDataset
from nofrost.files import atomic_write, atomic_write_text

#: Images corrupted per call to :func:`~nofrost.data.corruptions.corrupt` while generating.
GENERATION_BATCH = 256


def _source_batches(source: Dataset, batch: int) -> Iterator[np.ndarray]:
    """The source's images as uint8 ``(B, H, W, 3)`` batches, in order."""
    if isinstance(source, TensorImageDataset):
        for start in range(0, len(source), batch):
            yield source.images[start : start + batch].permute(0, 2, 3, 1).numpy()
        return
    for start in range(0, len(source), batch):
        items = [source[i][0] for i in range(start, min(start + batch, len(source)))]
        floats = torch.stack(items).permute(0, 2, 3, 1)
        yield floats.mul(255).round_().clamp_(0, 255).to(torch.uint8).numpy()


def _save_npy(path: str, array: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object: numpy.save would append .npy to a name
        np.save(f, array)


def _source_labels(source: Dataset) -> np.ndarray:
    try:
        return dataset_targets(source)
    except TypeError:
        return np.array([int(source[i][1]) for i in range(len(source))], dtype=np.int64)


def source_digest(source: Dataset) -> str:
    """SHA-256 of a dataset's images (as 8-bit RGB) and labels: what a cache entry was made from."""
    digest = hashlib.sha256()
    for images in _source_batches(source, GENERATION_BATCH):
        digest.update(np.ascontiguousarray(images).tobytes())
    digest.update(_source_labels(source).tobytes())
    return digest.hexdigest()


class CorruptedDataset(TensorImageDataset):
    """``source`` with one generated corruption: item ``i`` is source item ``i`` corrupted by
    :func:`~nofrost.data.corruptions.corrupt` with ``indices=[indices[i]]`` (default ``[i]``: a
    subset of a larger set passes its positions there, so each image is corrupted exactly as in
    the whole set), and keeps its label.

    Generated once (progress bar with ETA when ``progress``) and, with ``cache_dir``, cached
    there as ``<corruption>-<severity>-<resolution>-<key>.npy`` (uint8 ``N, 3, H, W``, memory-
    mapped when read) plus a ``.json`` with the labels and the key's fields. The key covers
    the corruption, severity, resolution, seed, :data:`GENERATOR_VERSION` and the source's
    digest (:func:`source_digest`, computed from the data unless given as ``digest``, e.g.
    from file names and sizes), so a changed source or generator never reads a stale entry.
    Both files are written atomically, the ``.json`` last, so an interrupted run leaves no
    entry that looks complete. With ``as_published`` (default) each image is also stored the
    way the published set stored it: ImageNet-C's as JPEG of quality 85 (encoded and decoded),
    CIFAR-10-C's as is (:data:`~nofrost.data.corruptions.constants.SAVED_JPEG_QUALITY`). Items are ``(float32 CHW image in [0, 1], label)`` like any
    :class:`TensorImageDataset`, which the batched loader and evaluation read directly.
    """

    def __init__(
        self,
        source: Dataset,
        corruption: str,
        severity: int,
        *,
        resolution: str = "cifar",
        seed: int = 0,
        cache_dir: str | os.PathLike | None = None,
        digest: str | None = None,
        as_published: bool = True,
        progress: bool = False,
        indices: Sequence[int] | None = None,
    ) -> None:
        check_variant(corruption, severity, resolution)
        if indices is not None and len(indices) != len(source):
            raise ValueError(f"indices gives {len(indices)} positions for a source of {len(source)} items")
        self.indices = list(range(len(source))) if indices is None else [int(i) for i in indices]
        if len(source) == 0:
            raise ValueError(f"cannot corrupt an empty dataset ({type(source).__name__} of length 0)")
        self.corruption, self.severity, self.resolution, self.seed = corruption, severity, resolution, seed
        self.jpeg_quality = SAVED_JPEG_QUALITY[resolution] if as_published else None
        key = {
            "corruption": corruption,
            "severity": severity,
            "resolution": resolution,
            "seed": seed,
            "jpeg_quality": self.jpeg_quality,
            "generator_version": GENERATOR_VERSION,
            "source_digest": digest or source_digest(source),
            "size": len(source),
            "indices": None if indices is None else hashlib.sha256(np.asarray(self.indices, np.int64).tobytes()).hexdigest(),
        }
        name = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        stem = f"{corruption}-{severity}-{resolution}-{name}"
        self.cache_path = Path(cache_dir) / f"{stem}.npy" if cache_dir is not None else None
        meta_path = self.cache_path.with_suffix(".json") if self.cache_path else None
        if meta_path is not None and meta_path.is_file() and self.cache_path.is_file():
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if meta.get("key") == key:
                # copy-on-write map: pages are read on use, never written back
                images = torch.from_numpy(np.load(self.cache_path, mmap_mode="c"))
                labels = torch.tensor(meta["labels"], dtype=torch.int64)
                super().__init__(images, labels, meta["classes"])
                return
        labels = _source_labels(source)
        classes = list(getattr(source, "classes", None) or [str(c) for c in range(int(labels.max()) + 1)])
        images = self._generate(source, progress)
        if self.cache_path is not None:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.cache_path, lambda tmp: _save_npy(tmp, images))
            meta = {"key": key, "labels": labels.tolist(), "classes": classes}
            atomic_write_text(meta_path, json.dumps(meta))
        super().__init__(torch.from_numpy(images), torch.from_numpy(labels), classes)

    def _generate(self, source: Dataset, progress: bool) -> np.ndarray:
        out = np.empty(0, dtype=np.uint8)
        bar = tqdm(
            total=len(source), disable=not progress, unit="img",
            desc=f"generating {self.corruption} severity {self.severity}",
        )
        start = 0
        with bar:
            for batch in _source_batches(source, GENERATION_BATCH):
                corrupted = corrupt(
                    batch, self.corruption, self.severity, resolution=self.resolution, seed=self.seed,
                    indices=self.indices[start : start + len(batch)],
                )
                if self.jpeg_quality is not None:
                    corrupted = jpeg_round_trip(corrupted, self.jpeg_quality)
                if start == 0:
                    out = np.empty((len(source), 3, *batch.shape[1:3]), dtype=np.uint8)
                out[start : start + len(batch)] = corrupted.transpose(0, 3, 1, 2)
                start += len(batch)
                bar.update(len(batch))
        return out
