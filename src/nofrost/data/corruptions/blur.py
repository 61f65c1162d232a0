"""Blur corruptions: Gaussian, glass, defocus, motion and zoom blur."""

from __future__ import annotations

import numpy as np

from nofrost.data.corruptions import ops
from nofrost.data.corruptions.base import CORRUPTIONS, draw


@CORRUPTIONS.register("gaussian_blur")
def gaussian_blur(x, params, rngs):
    """Gaussian blur of sigma ``params[0]`` pixels (edge pixels repeated)."""
    return ops.gaussian_filter(x, params[0])


def glass_positions(height: int, width: int, max_delta: int) -> np.ndarray:
    """The pixels the published glass blur visits, in its order: rows then columns, each from
    ``side - max_delta`` down to ``max_delta + 1``, as flat indices ``row * width + col``."""
    rows = np.arange(height - max_delta, max_delta, -1)
    cols = np.arange(width - max_delta, max_delta, -1)
    return (rows[:, None] * width + cols[None, :]).ravel()


def shuffle_pixels(x: np.ndarray, offsets: np.ndarray, max_delta: int) -> np.ndarray:
    """The glass blur's local pixel shuffle, for a batch at once.

    ``x``: ``(N, H, W, C)``; ``offsets``: ``(N, iterations, P, 2)`` integer ``(dx, dy)`` for the
    ``P`` positions of :func:`glass_positions`. In order, each visited pixel takes the value of
    the pixel ``(dy, dx)`` away. (The published code writes a swap, ``a, b = b, a`` of two
    NumPy views of the pixels' channels; the first assignment overwrites what the second then
    reads, so the partner keeps its value: a copy, which is what CIFAR-10-C and ImageNet-C
    hold.) A pixel may change several times, so the result depends on the order. Two visits
    can touch a common pixel only if their positions are within ``R = 2 * max_delta`` of each
    other in rows and in columns. The visits run from the last row and column backwards; with
    ``t = (R + 1) * (first row - row) + (first column - column)``, a later visit that can touch
    a pixel of an earlier one is in the same row further left (``t`` larger by 1 to ``R``) or
    in a row 1 to ``R`` above, at most ``R`` columns to the right (``t`` larger by
    ``(R + 1) * rows - columns >= 1``), so such pairs keep their order when visits run by
    increasing ``t``; visits of equal ``t`` lie ``R + 1`` or more columns apart and touch
    disjoint pixels. So all visits of one ``t`` run at once, for every image of the batch,
    with exactly the result of the one-by-one loop.
    """
    n, h, w, c = x.shape
    flat = x.reshape(n, h * w, c).copy()
    positions = glass_positions(h, w, max_delta)
    rows, cols = positions // w, positions % w
    wave = (2 * max_delta + 1) * (rows.max() - rows) + (cols.max() - cols)
    order = np.argsort(wave, kind="stable")
    fronts = np.split(order, np.flatnonzero(np.diff(wave[order])) + 1)
    batch = np.arange(n)[:, None]
    partners = positions[None, None, :] + offsets[..., 1] * w + offsets[..., 0]
    for iteration in range(offsets.shape[1]):
        for front in fronts:
            flat[:, positions[front]] = flat[batch, partners[:, iteration, front]]
    return flat.reshape(n, h, w, c)


@CORRUPTIONS.register("glass_blur")
def glass_blur(x, params, rngs):
    """Gaussian blur (sigma ``params[0]``), quantised to 8 bits by truncation as published,
    ``params[2]`` rounds of the local pixel shuffle (:func:`shuffle_pixels`) with offsets drawn
    in ``[-params[1], params[1] - 1]``, then the same blur again."""
    sigma, max_delta, iterations = params
    h, w = x.shape[1:3]
    blurred = np.floor(ops.gaussian_filter(x, sigma) * 255).astype(np.uint8)
    count = len(glass_positions(h, w, max_delta))
    offsets = draw(rngs, lambda rng: rng.integers(-max_delta, max_delta, (iterations, count, 2)))
    shuffled = shuffle_pixels(blurred, offsets, max_delta).astype(np.float32) / 255
    return ops.gaussian_filter(shuffled, sigma)


@CORRUPTIONS.register("defocus_blur")
def defocus_blur(x, params, rngs):
    """Correlate with an anti-aliased disk of radius ``params[0]`` (alias sigma ``params[1]``)."""
    radius, alias_blur = params
    return ops.correlate2d(x, ops.disk_kernel(radius, alias_blur))


@CORRUPTIONS.register("motion_blur")
def motion_blur(x, params, rngs):
    """ImageMagick-style motion blur (radius ``params[0]``, sigma ``params[1]``) at an angle
    drawn uniformly in [-45, 45] degrees, quantised to 8 bits as the published PNG round trip."""
    radius, sigma = params
    angles = draw(rngs, lambda rng: rng.uniform(-45, 45))
    return np.round(ops.motion_blur(x, radius, sigma, angles) * 255) / 255


@CORRUPTIONS.register("zoom_blur")
def zoom_blur(x, params, rngs):
    """Average the image with its centre zoomed by each factor of ``numpy.arange(*params)``."""
    factors = np.arange(*params)
    total = x.copy()
    for factor in factors:
        total += ops.clipped_zoom(x, float(factor))
    return total / np.float32(len(factors) + 1)
