"""Build the package asset ``src/nofrost/data/assets/cifar10_mini.npz`` from ``cifar10_jpeg.npz``.

The asset is a fixed (seed 0), class-stratified CIFAR-10 subset: 1,000 training and 200 test
images per class, kept as the source's JPEG bytes (same keys as the source archive) and stored
in shuffled order. Run from anywhere:

    python scripts/make_cifar10_mini.py [--source PATH] [--output PATH]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from nofrost.data.jpeg_npz import JpegSplit, pack_jpegs, read_jpeg_split, split_keys

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "cifar10_jpeg.npz"
DEFAULT_OUTPUT = REPO / "src" / "nofrost" / "data" / "assets" / "cifar10_mini.npz"
PER_CLASS = {"train": 1000, "test": 200}
MAX_BYTES = 12_000_000


def stratified_shuffled(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """``per_class`` random indices of every class, all in one random order."""
    picks = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if len(members) < per_class:
            raise ValueError(f"class {label} has {len(members)} images, fewer than {per_class}")
        picks.append(rng.choice(members, size=per_class, replace=False))
    return rng.permutation(np.concatenate(picks))


def subset_arrays(split: str, data: JpegSplit, indices: np.ndarray) -> dict[str, np.ndarray]:
    """The archive arrays of ``split`` restricted to ``indices`` (in that order)."""
    jpeg_key, offsets_key, labels_key = split_keys(split)
    jpeg, offsets = pack_jpegs([data.image_bytes(i) for i in indices])
    return {jpeg_key: jpeg, offsets_key: offsets, labels_key: data.labels[indices]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    arrays: dict[str, Any] = {}  # np.savez_compressed(**arrays) wants Any values
    for split, per_class in PER_CLASS.items():
        data = read_jpeg_split(args.source, split)
        arrays |= subset_arrays(split, data, stratified_shuffled(data.labels, per_class, rng))
        arrays["classes"] = np.array(data.classes)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.output, **arrays)
    size = args.output.stat().st_size
    if size > MAX_BYTES:
        raise SystemExit(f"{args.output} is {size:,} bytes, over the {MAX_BYTES:,}-byte budget")
    counts = {s: len(arrays[split_keys(s)[2]]) for s in PER_CLASS}
    print(f"wrote {args.output} ({size:,} bytes): {counts}")


if __name__ == "__main__":
    main()
