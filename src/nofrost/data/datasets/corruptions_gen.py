"""CIFAR-10-C and ImageNet-C generated here, for users without the published files.

``cifar10-c-gen`` corrupts the CIFAR-10 test split (the shipped ``cifar10-mini`` test split
when no root is given) with CIFAR-10-C's constants; ``imagenet-c-gen`` corrupts ImageNet val
(resized and centre-cropped to 224 px, as ImageNet-C was made) with ImageNet-C's constants
and stores each image as ImageNet-C did (JPEG, quality 85). Item i is source item i
corrupted as :func:`nofrost.data.corruptions.corrupt` does with ``indices=[i]``, with its
label. The names say "gen" everywhere results go, so a generated set is never taken for the
published one.

Sets are generated on first use and cached (``$NOFROST_CACHE``, default
``~/.cache/nofrost``, under ``corruptions/``), so a second evaluation reads them. Generation
is lazy: a subset (``--n``) generates only its images, each exactly as in the whole set.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from nofrost.console import progress_enabled
from nofrost.data.cifar import CIFAR10_LAYOUT, load_cifar10, load_cifar10_mini
from nofrost.data.corruptions.dataset import CorruptedDataset
from nofrost.data.corruptions.weather import frost_texture_dir
from nofrost.data.datasets._registry import CORRUPTION_VARIANTS, native_size, register_dataset
from nofrost.data.imagenet import IMAGENET_LAYOUT, load_imagenet
from nofrost.data.info import CIFAR10_INFO, imagenet_info
from nofrost.data.subset import dataset_targets, take
from nofrost.data.tensor_dataset import TensorImageDataset

CACHE_ENV = "NOFROST_CACHE"
IMAGENET_C_SIZE = 224  # ImageNet-C's images: resize 256, centre crop 224


def corruption_cache_dir() -> Path:
    """Where generated sets are cached: ``$NOFROST_CACHE/corruptions`` (default ``~/.cache/nofrost``)."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "nofrost") / "corruptions"


class GeneratedCorruption(Dataset):
    """One generated corruption and severity of ``source``, made on first use.

    Labels are known without generating (they are the source's), so a class-stratified subset
    (:func:`nofrost.data.take` calls :meth:`subset`) generates only its own images.
    :meth:`materialize` gives the generated :class:`CorruptedDataset` (cached on disk).
    """

    def __init__(self, source: Dataset, corruption: str, severity: int, *, resolution: str,
                 positions: np.ndarray | None = None) -> None:
        self.source, self.corruption, self.severity, self.resolution = source, corruption, severity, resolution
        everything = np.arange(len(source))
        self.positions = everything if positions is None else np.asarray(positions, dtype=np.int64)
        self.targets = torch.from_numpy(dataset_targets(source)[self.positions])
        self.classes = list(getattr(source, "classes", None) or [])
        self._generated: CorruptedDataset | None = None

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.materialize()[index]

    def subset(self, indices: Tensor) -> GeneratedCorruption:
        return GeneratedCorruption(self.source, self.corruption, self.severity, resolution=self.resolution,
                                   positions=self.positions[np.asarray(indices, dtype=np.int64)])

    def materialize(self) -> CorruptedDataset:
        if self._generated is None:
            whole = len(self.positions) == len(self.source)
            self._generated = CorruptedDataset(
                self.source if whole else take(self.source, self.positions), self.corruption, self.severity,
                resolution=self.resolution, cache_dir=corruption_cache_dir(), progress=progress_enabled(),
                indices=None if whole else self.positions.tolist(), digest=self._file_digest(),
            )
        return self._generated

    def _file_digest(self) -> str | None:
        """For a folder source, a digest of the chosen files' paths and sizes (decoding every
        image to hash it would cost as much as generating); None: hash the pixels."""
        samples = getattr(self.source, "samples", None)
        if samples is None:
            return None
        digest = hashlib.sha256()
        for position in self.positions:
            path, label = samples[position]
            digest.update(f"{path}\0{os.path.getsize(path)}\0{label}\n".encode())
        return digest.hexdigest()


def _check_textures(corruption: str) -> None:
    """Frost blends photos of frost that nofrost does not ship: say so before any work starts."""
    if corruption == "frost":
        frost_texture_dir()


_GENERATED = "generated here from the test split with the published constants (docs/ood.md)"


@register_dataset("cifar10-c-gen", summary=f"CIFAR-10-C {_GENERATED}", info=lambda: CIFAR10_INFO,
                  splits=("test",), layout=f"optional: the CIFAR-10 source; {CIFAR10_LAYOUT} (default: the "
                  "shipped cifar10-mini test split)", variants=CORRUPTION_VARIANTS, distribution_shift=True,
                  optional_root=True)
def cifar10_c_gen(root: Path | None, split: str, *, augment: bool, image_size: int | None, corruption: str,
                  severity: int) -> GeneratedCorruption:
    native_size("cifar10-c-gen", CIFAR10_INFO, image_size)
    _check_textures(corruption)
    source = TensorImageDataset(*(load_cifar10_mini("test") if root is None else load_cifar10(root, "test")))
    return GeneratedCorruption(source, corruption, severity, resolution="cifar")


@register_dataset("imagenet-c-gen", summary=f"ImageNet-C {_GENERATED.replace('test', 'val')}",
                  info=imagenet_info, splits=("val",), aliases={"test": "val"}, layout=IMAGENET_LAYOUT,
                  variants=CORRUPTION_VARIANTS, distribution_shift=True)
def imagenet_c_gen(root: Path, split: str, *, augment: bool, image_size: int | None, corruption: str,
                   severity: int) -> GeneratedCorruption:
    if image_size not in (None, IMAGENET_C_SIZE):
        raise ValueError(f"imagenet-c-gen is made at {IMAGENET_C_SIZE} px, as ImageNet-C; got image_size={image_size}")
    _check_textures(corruption)
    source = load_imagenet(root, "val", augment=False, image_size=IMAGENET_C_SIZE)
    return GeneratedCorruption(source, corruption, severity, resolution="imagenet")
