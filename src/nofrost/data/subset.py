"""Class-balanced, deterministic subsets."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset, Subset



def stratified_subset(dataset: Dataset, n: int, seed: int = 0) -> Dataset:
    """``n`` examples spread as evenly as possible over the classes present, chosen by ``seed``.

    Every class gets ``n // k`` or ``n // k + 1`` examples (k classes); a class with too few
    examples gives all it has and the others make up the difference. Examples keep the
    dataset's order. A TensorImageDataset gives a TensorImageDataset (so batched loading still
    applies); any other dataset with ``targets`` (or a Subset of one) gives a Subset.
    """
    return take(dataset, stratified_indices(dataset_targets(dataset), n, seed))


def stratified_split(targets: np.ndarray, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(chosen, rest)``: the positions :func:`stratified_subset` would pick, and all others."""
    chosen = stratified_indices(targets, n, seed)
    return chosen, np.setdiff1d(np.arange(len(targets)), chosen)


def take(dataset: Dataset, indices: np.ndarray) -> Dataset:
    """The examples of ``dataset`` at ``indices``: the dataset's own ``subset`` when it has one
    (a TensorImageDataset stays one; a generated corruption generates only those), else a
    torch Subset."""
    if callable(getattr(dataset, "subset", None)):
        return dataset.subset(torch.from_numpy(np.asarray(indices, dtype=np.int64)))
    return Subset(dataset, np.asarray(indices).tolist())


def stratified_indices(targets: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Sorted positions of ``n`` class-balanced examples of ``targets`` (see stratified_subset)."""
    if not 0 < n <= len(targets):
        raise ValueError(
            f"stratified_subset: n must be in [1, {len(targets)}] (the dataset size), got {n}"
        )
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(len(targets))
    by_class = shuffled[np.argsort(targets[shuffled], kind="stable")]  # grouped, random within
    labels = targets[by_class]
    rank_in_class = np.arange(len(labels)) - np.searchsorted(labels, labels, side="left")
    class_priority = rng.permutation(int(labels.max()) + 1)[labels]
    # Round robin: each class's first pick, then each class's second, ... (lexsort: last key first).
    return np.sort(by_class[np.lexsort((class_priority, rank_in_class))[:n]])


def dataset_targets(dataset: Dataset) -> np.ndarray:
    """The int64 labels of ``dataset`` (its ``targets``; through any Subset wrappers)."""
    if isinstance(dataset, Subset):
        return dataset_targets(dataset.dataset)[np.asarray(dataset.indices, dtype=np.int64)]
    targets = getattr(dataset, "targets", None)
    if targets is None:
        raise TypeError(
            f"expected a dataset with a `targets` attribute (one label per example), "
            f"got {type(dataset).__name__}"
        )
    return np.asarray(targets, dtype=np.int64)


def dataset_class_subset(dataset: Dataset) -> list[int] | None:
    """The sorted class indices ``dataset`` covers when it covers only some of the model's
    classes (its ``class_subset``, through any Subset wrappers); None when it covers them all."""
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    covered = getattr(dataset, "class_subset", None)
    return None if covered is None else [int(c) for c in covered]


def parse_classes(text: str) -> list[int]:
    """``"0-9"`` → ``[0, ..., 9]``; ``"0-4,7"`` → ``[0, 1, 2, 3, 4, 7]`` (sorted, no repeats)."""
    classes: set[int] = set()
    for part in str(text).split(","):
        low, sep, high = part.strip().partition("-")
        try:
            first, last = int(low), int(high) if sep else int(low)
        except ValueError:
            raise ValueError(f"classes: expected indices and ranges such as 0-9 or 0-4,7; got {text!r}") from None
        if first < 0 or last < first:
            raise ValueError(f"classes: {part.strip()!r} in {text!r} is not a range of class indices (low-high, low ≤ high)")
        classes.update(range(first, last + 1))
    return sorted(classes)


def class_subset(dataset: Dataset, classes: "list[int] | tuple[int, ...]") -> Dataset:
    """The examples of ``dataset`` whose label is one of ``classes``, in the dataset's order
    (the NoFrost paper's Table 5 uses "the 500 validation images from the first 10 classes"
    of ImageNet: ``class_subset(val, range(10))``)."""
    targets = dataset_targets(dataset)
    classes = sorted({int(c) for c in classes})
    present = set(np.unique(targets).tolist())
    missing = [c for c in classes if c not in present]
    if missing:
        raise ValueError(f"classes {missing} have no examples in this dataset (its classes: "
                         f"{min(present)}-{max(present)})" if present else "the dataset is empty")
    return take(dataset, np.flatnonzero(np.isin(targets, classes)))
