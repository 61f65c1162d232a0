"""Deterministic, sharded batch loading for training and evaluation."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Protocol

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset
from torch.utils.data.distributed import DistributedSampler

from nofrost.data.tensor_dataset import TensorImageDataset
from nofrost.data.transforms import random_crop_flip
from nofrost.data.views import VIEWS, check_views

_ORDER_STREAM, _AUGMENT_STREAM = 0, 1
_VIEW_STREAM = 0x71E3  # + index of the view in the requested tuple
CROP_PADDING = 4


class BatchLoader(Protocol):
    """Yields ``(float images in [0, 1], int64 labels)`` batches on the target device, or
    ``(images, labels, {view: images})`` when views were asked for."""

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]: ...


def derive_seed(*keys: int) -> int:
    """A well-mixed 64-bit seed from non-negative integers (e.g. seed, epoch, stream)."""
    return int(np.random.SeedSequence(list(keys)).generate_state(1, dtype=np.uint64)[0])


def make_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool,
    augment: bool,
    seed: int = 0,
    epoch: int = 0,
    drop_last: bool = False,
    num_workers: int = 0,
    device: str | torch.device = "cpu",
    rank: int = 0,
    world_size: int = 1,
    views: tuple[str, ...] = (),
) -> BatchLoader:
    """Batches of ``dataset`` for process ``rank`` of ``world_size``; ``batch_size`` is per process.

    The same ``(seed, epoch)`` always gives the same batches. Every rank walks a disjoint,
    equal-size, strided share of one order (shuffled by ``(seed, epoch)`` or not); the last
    ``len(dataset) % world_size`` examples of that order are left out (a different few each
    epoch when shuffling).

    A TensorImageDataset is batched directly from its uint8 tensor (moved to ``device`` once per
    pass; ``num_workers`` is unused), and ``augment`` applies :func:`random_crop_flip` with
    padding 4, seeded by ``(seed, epoch, rank)``. Any other dataset goes through a DataLoader
    (DistributedSampler when ``world_size > 1``); its augmentation is its own transform, so
    ``augment`` must match how it was loaded (``load_dataset(..., augment=...)``). Those
    transforms draw from the worker seeds, which derive from ``(seed, epoch, rank)``, or from
    the global torch RNG when ``num_workers == 0``.

    ``views`` (names of :data:`nofrost.data.views.VIEWS`, e.g. ``("tda",)``) adds a third item
    to every batch, ``{view: images}``: independent augmentations of the same source images.
    A TensorImageDataset's views are computed batched on ``device`` from the raw images, seeded
    by ``(seed, epoch, view, rank)``; another dataset must have been loaded with the same
    ``views`` (``load_dataset(..., views=...)``) and draws them in its workers.
    """
    if batch_size < 1:
        raise ValueError(f"make_loader: batch_size must be >= 1, got {batch_size}")
    if not 0 <= rank < world_size:
        raise ValueError(
            "make_loader: expected 0 <= rank < world_size, "
            f"got rank={rank}, world_size={world_size}"
        )
    if seed < 0 or epoch < 0:
        raise ValueError(
            f"make_loader: seed and epoch must be >= 0, got seed={seed}, epoch={epoch}"
        )
    device = torch.device(device)
    views = check_views(views)
    if isinstance(dataset, TensorImageDataset):
        return TensorBatchLoader(
            dataset,
            batch_size,
            shuffle=shuffle,
            augment=augment,
            seed=seed,
            epoch=epoch,
            drop_last=drop_last,
            device=device,
            rank=rank,
            world_size=world_size,
            views=views,
        )
    _check_transform_matches(dataset, augment, views)
    sampler: DistributedSampler | None = None
    if world_size > 1:
        sampler = DistributedSampler(
            dataset, num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed, drop_last=True
        )
        sampler.set_epoch(epoch)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        drop_last=drop_last,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=num_workers > 0,
        # Seeds the workers' transforms; per rank, so ranks draw different crops.
        generator=torch.Generator().manual_seed(derive_seed(seed, epoch, _ORDER_STREAM, *([rank] if world_size > 1 else []))),
    )
    return DeviceLoader(loader, device)


def _check_transform_matches(dataset: Dataset, augment: bool, views: tuple[str, ...]) -> None:
    while isinstance(dataset, Subset):  # e.g. from stratified_subset
        dataset = dataset.dataset
    loaded_views = tuple(getattr(dataset, "views", ()))
    if loaded_views != views:
        raise ValueError(
            f"make_loader(views={views}) but the dataset was loaded with views={loaded_views}; "
            f"load it with load_dataset(..., views={views})"
        )
    loaded_with = getattr(dataset, "augment", None)
    if loaded_with is None and augment:
        raise ValueError(
            f"make_loader(augment=True) can only augment a TensorImageDataset, not "
            f"{type(dataset).__name__}; load the dataset with load_dataset(..., augment=True) "
            "and pass augment=True here too"
        )
    if loaded_with is not None and loaded_with != augment:
        raise ValueError(
            f"make_loader(augment={augment}) but the dataset was loaded with "
            f"augment={loaded_with}; load it with load_dataset(..., augment={augment})"
        )


class TensorBatchLoader:
    """Batches gathered straight from a TensorImageDataset's uint8 tensor (see make_loader)."""

    def __init__(
        self,
        dataset: TensorImageDataset,
        batch_size: int,
        *,
        shuffle: bool,
        augment: bool,
        seed: int,
        epoch: int,
        drop_last: bool,
        device: torch.device,
        rank: int,
        world_size: int,
        views: tuple[str, ...] = (),
    ) -> None:
        if views and dataset.images.shape[1] != 3:
            raise ValueError(
                f"image views {views} need RGB images; this dataset has {dataset.images.shape[1]} channel(s)"
            )
        self.views = views
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle, self.augment, self.drop_last = shuffle, augment, drop_last
        self.seed, self.epoch = seed, epoch
        self.device = device
        self.rank, self.world_size = rank, world_size

    def indices(self) -> Tensor:
        """The example indices this rank visits, in order."""
        n = len(self.dataset)
        if self.shuffle:
            generator = torch.Generator().manual_seed(
                derive_seed(self.seed, self.epoch, _ORDER_STREAM)
            )
            order = torch.randperm(n, generator=generator)
        else:
            order = torch.arange(n)
        per_rank = n // self.world_size
        return order[self.rank : per_rank * self.world_size : self.world_size]

    def __len__(self) -> int:
        per_rank = len(self.dataset) // self.world_size
        return (
            per_rank // self.batch_size if self.drop_last else math.ceil(per_rank / self.batch_size)
        )

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        indices = self.indices().to(self.device)
        images = self.dataset.images.to(self.device)
        targets = self.dataset.targets.to(self.device)
        generator = None
        if self.augment:
            generator = torch.Generator().manual_seed(
                derive_seed(self.seed, self.epoch, _AUGMENT_STREAM, self.rank)
            )
        view_generators = {
            name: torch.Generator().manual_seed(derive_seed(self.seed, self.epoch, _VIEW_STREAM + k, self.rank))
            for k, name in enumerate(self.views)
        }
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            batch = indices[start : start + self.batch_size]
            source = x = images[batch]
            if generator is not None:  # on uint8: same result as after conversion, faster
                x = random_crop_flip(x, pad=CROP_PADDING, generator=generator)
            if not self.views:
                yield x.float().div_(255), targets[batch]
                continue
            views = {name: VIEWS[name].batch(source, g) for name, g in view_generators.items()}
            yield x.float().div_(255), targets[batch], views


class DeviceLoader:
    """Wraps a DataLoader so that batches arrive on ``device``."""

    def __init__(self, loader: DataLoader, device: torch.device) -> None:
        self.loader = loader
        self.device = device

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        for x, y, *views in self.loader:
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            if not views:
                yield x, y
                continue
            yield x, y, {name: v.to(self.device, non_blocking=True) for name, v in views[0].items()}
