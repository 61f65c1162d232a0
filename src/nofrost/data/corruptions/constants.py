"""The published severity parameters of CIFAR-10-C (32 px) and ImageNet-C (224 px), as data.

Each table maps a corruption to its 5 parameter tuples, severity 1 first. The values are
copied as facts from the generators of github:hendrycks/robustness:

- :data:`CIFAR10_C`: ``ImageNet-C/create_c/make_cifar_c.py``,
  commit ca360085d57889288c4143fddd8a707bbcae01bd;
- :data:`IMAGENET_C`: ``ImageNet-C/create_c/make_imagenet_c.py``,
  commit e0377d46411fa30c01a9559017bdb6a5f78d4abf (the ``imagecorruptions`` package uses the
  same values, except for its rewritten elastic transform).

What each tuple means is written next to the corruption's implementation; the tuple layouts
are the published ones, so a value can be checked against the source by position.
"""

from __future__ import annotations


Table = dict[str, tuple[tuple, tuple, tuple, tuple, tuple]]

CIFAR10_C: Table = {
    # sigma of the additive normal noise, on [0, 1] pixels
    "gaussian_noise": ((0.04,), (0.06,), (0.08,), (0.09,), (0.10,)),
    # photons per unit intensity (Poisson rate scale)
    "shot_noise": ((500,), (250,), (100,), (75,), (50,)),
    # fraction of pixels set to 0 or 1 (salt and pepper)
    "impulse_noise": ((0.01,), (0.02,), (0.03,), (0.05,), (0.07,)),
    # sigma of the multiplicative normal noise
    "speckle_noise": ((0.06,), (0.1,), (0.12,), (0.16,), (0.2,)),
    # sigma of the Gaussian blur, pixels
    "gaussian_blur": ((0.4,), (0.6,), (0.7,), (0.8,), (1,)),
    # (blur sigma, max pixel displacement, iterations)
    "glass_blur": ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)),
    # (disk radius, anti-alias blur sigma)
    "defocus_blur": ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),
    # (kernel radius, kernel sigma) of the motion blur
    "motion_blur": ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)),
    # (start, stop, step) of the zoom factors, expanded with numpy.arange as published:
    # floating point makes arange(1, 1.06, 0.01) 7 factors, the last about 1.06
    "zoom_blur": (
        (1, 1.06, 0.01),
        (1, 1.11, 0.01),
        (1, 1.16, 0.01),
        (1, 1.21, 0.01),
        (1, 1.26, 0.01),
    ),
    # (flake mean, flake std, flake zoom, flake threshold, blur radius, blur sigma, image weight)
    "snow": (
        (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
        (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
        (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
        (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
    ),
    # (image weight, frost texture weight)
    "frost": ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)),
    # (fog strength, plasma fractal wibble decay)
    "fog": ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)),
    # value (HSV) added
    "brightness": ((0.05,), (0.1,), (0.15,), (0.2,), (0.3,)),
    # factor on the distance to the per-channel mean
    "contrast": ((0.75,), (0.5,), (0.4,), (0.3,), (0.15,)),
    # (alpha, sigma, affine max shift), pixels: written IMSIZE * k with IMSIZE = 32
    "elastic_transform": (
        (32 * 0, 32 * 0, 32 * 0.08),
        (32 * 0.05, 32 * 0.2, 32 * 0.07),
        (32 * 0.08, 32 * 0.06, 32 * 0.06),
        (32 * 0.1, 32 * 0.04, 32 * 0.05),
        (32 * 0.1, 32 * 0.03, 32 * 0.03),
    ),
    # side of the down-sampled image, as a fraction of the side
    "pixelate": ((0.95,), (0.9,), (0.85,), (0.75,), (0.65,)),
    # JPEG quality
    "jpeg_compression": ((80,), (65,), (58,), (50,), (40,)),
    # (mean, std, blur sigma, threshold, intensity or mud blur sigma, 0 = water / 1 = mud)
    "spatter": (
        (0.62, 0.1, 0.7, 0.7, 0.5, 0),
        (0.65, 0.1, 0.8, 0.7, 0.5, 0),
        (0.65, 0.3, 1, 0.69, 0.5, 0),
        (0.65, 0.1, 0.7, 0.69, 0.6, 1),
        (0.65, 0.1, 0.5, 0.68, 0.6, 1),
    ),
    # (saturation factor, saturation added)
    "saturate": ((0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)),
}

IMAGENET_C: Table = {
    "gaussian_noise": ((0.08,), (0.12,), (0.18,), (0.26,), (0.38,)),
    "shot_noise": ((60,), (25,), (12,), (5,), (3,)),
    "impulse_noise": ((0.03,), (0.06,), (0.09,), (0.17,), (0.27,)),
    "speckle_noise": ((0.15,), (0.2,), (0.35,), (0.45,), (0.6,)),
    "gaussian_blur": ((1,), (2,), (3,), (4,), (6,)),
    "glass_blur": ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)),
    "defocus_blur": ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)),
    "motion_blur": ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15)),
    "zoom_blur": (
        (1, 1.11, 0.01),
        (1, 1.16, 0.01),
        (1, 1.21, 0.02),
        (1, 1.26, 0.02),
        (1, 1.31, 0.03),
    ),
    "snow": (
        (0.1, 0.3, 3, 0.5, 10, 4, 0.8),
        (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
        (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
        (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
        (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
    ),
    "frost": ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)),
    "fog": ((1.5, 2), (2, 2), (2.5, 1.7), (2.5, 1.5), (3, 1.4)),
    "brightness": ((0.1,), (0.2,), (0.3,), (0.4,), (0.5,)),
    "contrast": ((0.4,), (0.3,), (0.2,), (0.1,), (0.05,)),
    # written 244 * k in the source ("244 should have been 224, but ultimately nothing is
    # incorrect"); kept as published
    "elastic_transform": (
        (244 * 2, 244 * 0.7, 244 * 0.1),
        (244 * 2, 244 * 0.08, 244 * 0.2),
        (244 * 0.05, 244 * 0.01, 244 * 0.02),
        (244 * 0.07, 244 * 0.01, 244 * 0.02),
        (244 * 0.12, 244 * 0.01, 244 * 0.02),
    ),
    "pixelate": ((0.6,), (0.5,), (0.4,), (0.3,), (0.25,)),
    "jpeg_compression": ((25,), (18,), (15,), (10,), (7,)),
    "spatter": (
        (0.65, 0.3, 4, 0.69, 0.6, 0),
        (0.65, 0.3, 3, 0.68, 0.6, 0),
        (0.65, 0.3, 2, 0.68, 0.5, 0),
        (0.65, 0.3, 1, 0.65, 1.5, 1),
        (0.67, 0.4, 1, 0.65, 1.5, 1),
    ),
    "saturate": ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)),
}

#: The constant tables by resolution name: ``"cifar"`` (32 px) and ``"imagenet"`` (224 px).
TABLES: dict[str, Table] = {"cifar": CIFAR10_C, "imagenet": IMAGENET_C}

#: How the published files stored each corrupted image: CIFAR-10-C as raw uint8 arrays
#: (``np.save``, no re-encoding), ImageNet-C as JPEG of quality 85 (``make_imagenet_c.py``,
#: ``DistortImageFolder.__getitem__``: ``save(..., quality=85, optimize=True)``).
SAVED_JPEG_QUALITY: dict[str, int | None] = {"cifar": None, "imagenet": 85}
