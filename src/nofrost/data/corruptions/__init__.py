"""The corruptions of CIFAR-10-C and ImageNet-C (Hendrycks & Dietterich, ICLR 2019).

Names use the published spelling: the folder names of ImageNet-C and the ``.npy`` file names
of CIFAR-10-C (github:hendrycks/robustness). The 15 benchmark corruptions come first, in the
published order (the order of mCE tables), then the 4 extra ones released for validation.

:func:`corrupt` generates any of them at any severity, deterministically, with the published
constants of CIFAR-10-C (32 px) or ImageNet-C (224 px) (:mod:`.constants`);
:class:`CorruptedDataset` wraps a dataset with one generated corruption, cached on disk.
"""

from __future__ import annotations

BENCHMARK_CORRUPTIONS: tuple[str, ...] = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "frost",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
)
EXTRA_CORRUPTIONS: tuple[str, ...] = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)


def list_corruptions() -> list[str]:
    """The 15 benchmark corruptions in published order, then the 4 extra ones."""
    return [*BENCHMARK_CORRUPTIONS, *EXTRA_CORRUPTIONS]


# imported last: the generators check names and severities against the lists above
from nofrost.data.corruptions.generate import GENERATOR_VERSION, check_variant, corrupt  # noqa: E402
from nofrost.data.corruptions.dataset import CorruptedDataset, source_digest  # noqa: E402

__all__ = [
    "BENCHMARK_CORRUPTIONS",
    "CorruptedDataset",
    "EXTRA_CORRUPTIONS",
    "GENERATOR_VERSION",
    "SEVERITIES",
    "check_variant",
    "corrupt",
    "list_corruptions",
    "source_digest",
]
