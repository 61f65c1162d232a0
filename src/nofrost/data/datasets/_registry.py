"""The dataset registry: ``name -> DatasetEntry`` (what the dataset is, and how to load it).

A dataset family is one small module in this package that calls :func:`register_dataset` on
its loader, with the dataset's metadata: its :class:`~nofrost.data.info.DatasetInfo`, splits
(and aliases such as ``test`` → ``val``), what ``root`` must hold, and the variant parameters
it takes (``corruption=``, ``severity=``). :func:`nofrost.data.load_dataset` validates every
argument against the entry before the loader runs, so a loader only ever sees valid values.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from nofrost.data.corruptions import SEVERITIES, list_corruptions
from nofrost.data.info import DatasetInfo
from nofrost.registry import Registry

__all__ = ["CORRUPTION_VARIANTS", "DatasetEntry", "Variant", "dataset_entry", "register_dataset", "DATASETS"]


@dataclass(frozen=True)
class Variant:
    """A keyword parameter that picks one version of a dataset (``corruption="fog"``): its
    name, the values it takes, and what it means."""

    name: str
    choices: tuple[Any, ...]
    doc: str

    def check(self, dataset: str, value: Any) -> Any:
        if value not in self.choices:
            valid = ", ".join(map(str, self.choices))
            raise ValueError(f"{self.name} {value!r} is not valid for dataset {dataset!r}; valid: {valid}")
        return value


@dataclass(frozen=True)
class DatasetEntry:
    """One registered dataset.

    ``load(root, split, *, augment, image_size, **variants)`` gets a validated split, the root
    as a Path (None for a dataset shipped with the package: ``layout`` is then None), and one
    value for every declared variant. ``distribution_shift``: a test set for robustness beyond
    the training distribution (its evaluation is written beside, not over, a run's eval.json).
    ``reference_errors``: for a corruption benchmark with a published mCE reference, that
    model's top-1 error per benchmark corruption, averaged over severities (ImageNet-C: AlexNet);
    ``reference_clean_error``: its error on the uncorrupted images, and ``uncorrupted``: the
    (dataset, split) whose images the benchmark corrupts. Relative mCE needs all three.
    """

    name: str
    summary: str
    info: Callable[[], DatasetInfo]
    splits: tuple[str, ...]
    layout: str | None
    load: Callable[..., Dataset]
    aliases: Mapping[str, str] = field(default_factory=dict)
    variants: tuple[Variant, ...] = ()
    distribution_shift: bool = False
    reference_errors: Callable[[], Mapping[str, float]] | None = None
    optional_root: bool = False  # the root may be omitted (the loader then has a built-in source)
    reference_clean_error: Callable[[], float] | None = None
    uncorrupted: tuple[str, str] | None = None

    @property
    def has_relative_mce(self) -> bool:
        """Whether the benchmark carries all that relative mCE needs."""
        return None not in (self.reference_errors, self.reference_clean_error, self.uncorrupted)

    def variant(self, name: str) -> Variant | None:
        return next((v for v in self.variants if v.name == name), None)

    def resolve_split(self, split: str) -> str:
        resolved = self.aliases.get(split, split)
        if resolved not in self.splits:
            allowed = sorted([*self.splits, *self.aliases])
            raise ValueError(f"unknown split {split!r} for dataset {self.name!r}; allowed: {', '.join(allowed)}")
        return resolved

    def check_variants(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """``given`` checked against the declared variants: each one given, each value valid."""
        names = [v.name for v in self.variants]
        unknown = sorted(set(given) - set(names))
        if unknown:
            takes = f"it takes {', '.join(f'{n}=' for n in names)}" if names else "it takes none"
            raise ValueError(f"dataset {self.name!r} has no variant parameter {unknown[0]}=; {takes}")
        missing = [v for v in self.variants if v.name not in given]
        if missing:
            v = missing[0]
            raise ValueError(f"dataset {self.name!r} needs {v.name}= ({v.doc}); valid: "
                             f"{', '.join(map(str, v.choices))}")
        return {v.name: v.check(self.name, given[v.name]) for v in self.variants}

    def root_path(self, root: str | os.PathLike[str] | None) -> Path | None:
        if self.layout is None:
            if root is not None:
                raise ValueError(f"dataset {self.name!r} ships with the package and takes no root, got root={root!r}")
            return None
        if root is None:
            if self.optional_root:
                return None
            raise ValueError(f"dataset {self.name!r} needs root=...; {self.layout}")
        return Path(root)


DATASETS: Registry[DatasetEntry] = Registry("dataset")

#: The variants of every corruption benchmark (CIFAR-10-C, ImageNet-C, and generated ones):
#: the corruption's published name and its severity. The evaluation runs a dataset with these
#: over every corruption × severity (nofrost.evaluate.corruptions).
CORRUPTION_VARIANTS = (
    Variant("corruption", tuple(list_corruptions()), "15 benchmark corruptions, then 4 extra ones"),
    Variant("severity", SEVERITIES, "1, the mildest, to 5"),
)


def register_dataset(
    name: str,
    *,
    summary: str,
    info: Callable[[], DatasetInfo],
    splits: tuple[str, ...],
    layout: str | None,
    aliases: Mapping[str, str] | None = None,
    variants: tuple[Variant, ...] = (),
    distribution_shift: bool = False,
    reference_errors: Callable[[], Mapping[str, float]] | None = None,
    optional_root: bool = False,
    reference_clean_error: Callable[[], float] | None = None,
    uncorrupted: tuple[str, str] | None = None,
) -> Callable[[Callable[..., Dataset]], Callable[..., Dataset]]:
    """Decorator that registers a loader under ``name`` with its :class:`DatasetEntry` metadata."""

    def decorator(load: Callable[..., Dataset]) -> Callable[..., Dataset]:
        entry = DatasetEntry(name, summary, info, splits, layout, load, dict(aliases or {}), variants,
                             distribution_shift, reference_errors, optional_root, reference_clean_error,
                             uncorrupted)
        DATASETS.register(name)(entry)
        return load

    return decorator


def dataset_entry(name: str) -> DatasetEntry:
    """The registered dataset ``name`` (ValueError listing the registered ones otherwise)."""
    return DATASETS.get(name)


def native_size(name: str, info: DatasetInfo, image_size: int | None) -> None:
    """Refuse an ``image_size`` other than the native one, for datasets held at a fixed size."""
    if image_size not in (None, info.image_size):
        native = info.image_size
        raise ValueError(f"dataset {name!r} has {native}x{native} images; image_size must be None or {native}, "
                         f"got {image_size}")
