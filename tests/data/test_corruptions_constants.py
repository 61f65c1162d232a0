"""The published corruption constants, spot-checked against the generator sources.

CIFAR-10-C: github:hendrycks/robustness ``ImageNet-C/create_c/make_cifar_c.py`` at commit
ca360085d57889288c4143fddd8a707bbcae01bd; ImageNet-C: ``ImageNet-C/create_c/make_imagenet_c.py``
at commit e0377d46411fa30c01a9559017bdb6a5f78d4abf. Each expected value below is read off
those files (function name, severity) by hand.
"""

from __future__ import annotations

import numpy as np
import pytest

from nofrost.data.corruptions import SEVERITIES, list_corruptions
from nofrost.data.corruptions.constants import CIFAR10_C, IMAGENET_C, TABLES


@pytest.mark.parametrize("table", [CIFAR10_C, IMAGENET_C], ids=["cifar", "imagenet"])
def test_every_corruption_has_five_severities_of_one_layout(table):
    assert sorted(table) == sorted(list_corruptions())
    for name, rows in table.items():
        assert len(rows) == len(SEVERITIES), name
        assert len({len(row) for row in rows}) == 1, name
    # both resolutions share each corruption's tuple layout, so one implementation serves both
    other = IMAGENET_C if table is CIFAR10_C else CIFAR10_C
    assert {n: len(r[0]) for n, r in table.items()} == {n: len(r[0]) for n, r in other.items()}


@pytest.mark.parametrize(
    "resolution, corruption, severity, expected",
    [
        # make_cifar_c.py
        ("cifar", "gaussian_noise", 1, (0.04,)),
        ("cifar", "gaussian_noise", 5, (0.10,)),
        ("cifar", "shot_noise", 3, (100,)),
        ("cifar", "glass_blur", 4, (0.25, 1, 2)),
        ("cifar", "defocus_blur", 5, (1.5, 0.1)),
        ("cifar", "motion_blur", 2, (6, 1.5)),
        ("cifar", "snow", 5, (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)),
        ("cifar", "frost", 3, (0.9, 0.4)),
        ("cifar", "fog", 5, (1.5, 1.75)),
        ("cifar", "contrast", 5, (0.15,)),
        ("cifar", "elastic_transform", 2, (32 * 0.05, 32 * 0.2, 32 * 0.07)),
        ("cifar", "jpeg_compression", 1, (80,)),
        ("cifar", "spatter", 4, (0.65, 0.1, 0.7, 0.69, 0.6, 1)),
        ("cifar", "saturate", 5, (2.5, 0.2)),
        # make_imagenet_c.py
        ("imagenet", "gaussian_noise", 1, (0.08,)),
        ("imagenet", "gaussian_noise", 5, (0.38,)),
        ("imagenet", "shot_noise", 5, (3,)),
        ("imagenet", "impulse_noise", 4, (0.17,)),
        ("imagenet", "glass_blur", 5, (1.5, 4, 2)),
        ("imagenet", "defocus_blur", 1, (3, 0.1)),
        ("imagenet", "motion_blur", 5, (20, 15)),
        ("imagenet", "snow", 3, (0.55, 0.3, 4, 0.9, 12, 8, 0.7)),
        ("imagenet", "frost", 5, (0.6, 0.75)),
        ("imagenet", "fog", 1, (1.5, 2)),
        ("imagenet", "brightness", 5, (0.5,)),
        ("imagenet", "elastic_transform", 1, (244 * 2, 244 * 0.7, 244 * 0.1)),
        ("imagenet", "pixelate", 5, (0.25,)),
        ("imagenet", "jpeg_compression", 5, (7,)),
        ("imagenet", "speckle_noise", 3, (0.35,)),
        ("imagenet", "gaussian_blur", 5, (6,)),
        ("imagenet", "saturate", 5, (20, 0.2)),
    ],
)
def test_published_values(resolution, corruption, severity, expected):
    assert TABLES[resolution][corruption][severity - 1] == pytest.approx(expected)


def test_zoom_factors_expand_as_published_numpy_arange():
    # make_cifar_c.py severity 1: np.arange(1, 1.06, 0.01); make_imagenet_c.py severity 5:
    # np.arange(1, 1.31, 0.03)
    assert np.allclose(np.arange(*CIFAR10_C["zoom_blur"][0]), np.arange(1, 1.06, 0.01))
    assert np.allclose(np.arange(*IMAGENET_C["zoom_blur"][4]), np.arange(1, 1.31, 0.03))
    assert len(np.arange(*IMAGENET_C["zoom_blur"][4])) == 11
