"""Weather corruptions: snow, frost, fog, and spatter (water or mud)."""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from nofrost.data.corruptions import ops
from nofrost.data.corruptions.base import CORRUPTIONS, draw


@CORRUPTIONS.register("snow")
def snow(x, params, rngs):
    """Flakes: normal noise (mean ``p[0]``, std ``p[1]``) zoomed by ``p[2]``, zeroed below
    ``p[3]``, quantised to 8 bits, motion-blurred (radius ``p[4]``, sigma ``p[5]``, angle in
    [-135, -45] degrees) and added twice (the second copy rotated 180 degrees) to the image
    brightened towards ``1.5 * grey + 0.5`` with weight ``1 - p[6]``."""
    mean, std, zoom, threshold, radius, sigma, weight = params
    h, w = x.shape[1:3]
    layer = draw(rngs, lambda rng: rng.normal(mean, std, (h, w))).astype(np.float32)
    angles = draw(rngs, lambda rng: rng.uniform(-135, -45))
    layer = ops.clipped_zoom(layer, zoom)
    layer[layer < threshold] = 0
    layer = np.floor(np.clip(layer, 0, 1) * 255).astype(np.float32) / 255
    layer = np.round(ops.motion_blur(layer, radius, sigma, angles) * 255)[..., None] / 255
    x = weight * x + (1 - weight) * np.maximum(x, ops.to_gray(x) * 1.5 + 0.5)
    return x + layer + np.rot90(layer, k=2, axes=(1, 2))


@CORRUPTIONS.register("fog")
def fog(x, params, rngs):
    """Add ``p[0]`` times a plasma fractal (wibble decay ``p[1]``) of the next power-of-two size
    (32 for CIFAR, 256 for ImageNet, as published), then rescale by ``max / (max + p[0])``."""
    strength, decay = params
    h, w = x.shape[1:3]
    size = 1 << (max(h, w) - 1).bit_length()
    plasma = draw(rngs, lambda rng: ops.plasma_fractal(rng, size, decay)[:h, :w])
    peak = x.reshape(x.shape[0], -1).max(axis=1)[:, None, None, None]
    return (x + strength * plasma[..., None].astype(np.float32)) * peak / (peak + strength)


#: The published frost textures the generators draw from (``randint(5)``: the sixth file,
#: ``frost6.jpg``, is in the folder but never chosen).
FROST_TEXTURES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg")
#: Where :func:`frost_texture_dir` looks first.
FROST_DIR_ENV = "NOFROST_FROST_DIR"


def frost_texture_dir() -> Path:
    """The folder with the published frost textures.

    The textures (photos in github:hendrycks/robustness, ``ImageNet-C/create_c``) come without a
    stated source or licence of their own, so nofrost does not ship them. They are found in the
    folder named by ``$NOFROST_FROST_DIR``, else in the ``frost/`` folder of an installed
    ``imagecorruptions`` or ``imagecorruptions-imaug`` package (both ship them; the package is
    located, not imported)."""
    candidates = []
    if os.environ.get(FROST_DIR_ENV):
        candidates.append(Path(os.environ[FROST_DIR_ENV]))
    spec = importlib.util.find_spec("imagecorruptions")
    if spec is not None and spec.origin is not None:
        candidates.append(Path(spec.origin).parent / "frost")
    for folder in candidates:
        if all((folder / name).is_file() for name in FROST_TEXTURES):
            return folder
    looked = ", ".join(str(c) for c in candidates) or "nowhere"
    raise FileNotFoundError(
        "frost needs the published frost textures (" + ", ".join(FROST_TEXTURES) + "), which "
        "nofrost does not ship (they carry no stated licence). Put them in a folder and set "
        f"{FROST_DIR_ENV}=<folder>, or `pip install imagecorruptions-imaug`, which ships them "
        f"(looked in: {looked})"
    )


@functools.lru_cache(maxsize=4)
def _frost_textures(folder: Path, scale: float) -> tuple[np.ndarray, ...]:
    textures = []
    for name in FROST_TEXTURES:
        image = np.asarray(Image.open(folder / name).convert("RGB"), dtype=np.float32) / 255
        if scale != 1:
            # OpenCV resize (INTER_LINEAR, no anti-aliasing) of the published CIFAR generator
            size = (round(image.shape[0] * scale), round(image.shape[1] * scale))
            tensor = torch.from_numpy(image).permute(2, 0, 1)[None]
            tensor = torch.nn.functional.interpolate(tensor, size, mode="bilinear", align_corners=False)
            image = tensor[0].permute(1, 2, 0).numpy()
        textures.append(image)
    return tuple(textures)


@CORRUPTIONS.register("frost")
def frost(x, params, rngs):
    """``p[0] * image + p[1] * frost``: a random crop of a random published frost texture,
    scaled by 0.2 first for images of at most 64 px (the CIFAR generator's choice)."""
    image_weight, frost_weight = params
    h, w = x.shape[1:3]
    textures = _frost_textures(frost_texture_dir(), 0.2 if max(h, w) <= 64 else 1.0)
    fits = min(t.shape[0] for t in textures) - 1, min(t.shape[1] for t in textures) - 1
    if h > fits[0] or w > fits[1]:
        raise ValueError(
            f"frost crops its textures to the image size: images up to {fits[0]}x{fits[1]} px "
            f"(height x width) fit, got {h}x{w}; resize the images first"
        )
    crops = []
    for rng in rngs:
        texture = textures[rng.integers(len(textures))]
        top = rng.integers(0, texture.shape[0] - h)
        left = rng.integers(0, texture.shape[1] - w)
        crops.append(texture[top : top + h, left : left + w])
    return image_weight * x + frost_weight * np.stack(crops)


def _box3(x: np.ndarray) -> np.ndarray:
    """OpenCV ``blur(x, (3, 3))``: 3x3 mean, mirrored borders."""
    box = np.full(3, 1 / 3)
    return ops.correlate1d(ops.correlate1d(x, box, 1, "reflect101"), box, 2, "reflect101")


def _canny(image: np.ndarray, low: float, high: float) -> np.ndarray:
    """Canny edges of 8-bit images ``(N, H, W)`` as OpenCV computes them: 3x3 Sobel (edges
    repeated), L1 gradient magnitude, non-maximum suppression in four directions, hysteresis
    between ``low`` and ``high`` over 8-neighbours."""
    smooth = np.array([1.0, 2.0, 1.0])
    diff = np.array([-1.0, 0.0, 1.0])
    image = image.astype(np.float32)
    gx = ops.correlate1d(ops.correlate1d(image, diff, 2, "nearest"), smooth, 1, "nearest")
    gy = ops.correlate1d(ops.correlate1d(image, diff, 1, "nearest"), smooth, 2, "nearest")
    mag = np.abs(gx) + np.abs(gy)
    padded = np.pad(mag, ((0, 0), (1, 1), (1, 1)))
    h, w = image.shape[1:]

    def neighbour(dy: int, dx: int) -> np.ndarray:
        return padded[:, 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]

    ax, ay = np.abs(gx), np.abs(gy)
    tan22 = np.tan(np.radians(22.5))
    horizontal = ay < ax * tan22
    vertical = ay > ax / tan22
    same_sign = gx * gy >= 0
    maximum = np.where(
        horizontal,
        (mag > neighbour(0, -1)) & (mag >= neighbour(0, 1)),
        np.where(
            vertical,
            (mag > neighbour(-1, 0)) & (mag >= neighbour(1, 0)),
            np.where(
                same_sign,
                (mag > neighbour(-1, -1)) & (mag > neighbour(1, 1)),
                (mag > neighbour(-1, 1)) & (mag > neighbour(1, -1)),
            ),
        ),
    )
    candidate = maximum & (mag > low)
    edges = candidate & (mag > high)
    while True:
        grown = np.pad(edges, ((0, 0), (1, 1), (1, 1)))
        reach = np.zeros_like(edges)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                reach |= grown[:, 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
        new = candidate & reach
        if (new == edges).all():
            return edges
        edges = new


def _distance_to(edges: np.ndarray, limit: int) -> np.ndarray:
    """Euclidean distance of each pixel to the nearest edge pixel, capped at ``limit``
    (separable: distance along rows, then the minimum over nearby rows)."""
    h, w = edges.shape[1:]
    big = float(limit + 1) ** 2
    padded = np.pad(np.where(edges, 0.0, big), ((0, 0), (0, 0), (limit, limit)), constant_values=big)
    rows = np.full(edges.shape, big)
    for dx in range(-limit, limit + 1):
        rows = np.minimum(rows, padded[:, :, limit + dx : limit + dx + w] + dx * dx)
    padded = np.pad(rows, ((0, 0), (limit, limit), (0, 0)), constant_values=big)
    total = np.full(edges.shape, big)
    for dy in range(-limit, limit + 1):
        total = np.minimum(total, padded[:, limit + dy : limit + dy + h] + dy * dy)
    return np.minimum(np.sqrt(total), limit)


def _equalize(image: np.ndarray) -> np.ndarray:
    """OpenCV ``equalizeHist`` of each 8-bit image ``(N, H, W)``."""
    out = np.empty_like(image)
    for b, single in enumerate(image):
        hist = np.bincount(single.ravel(), minlength=256)
        first = int(np.flatnonzero(hist)[0])
        if hist[first] == single.size:
            out[b] = single
            continue
        cumulative = (np.cumsum(hist) - hist[first]).astype(np.float32)
        scale = np.float32(255) / np.float32(single.size - hist[first])  # OpenCV: float32
        lut = np.clip(np.round(cumulative * scale), 0, 255)
        out[b] = lut.astype(np.uint8)[single]
    return out


@CORRUPTIONS.register("spatter")
def spatter(x, params, rngs):
    """Liquid: normal noise (mean ``p[0]``, std ``p[1]``) blurred by sigma ``p[2]`` and zeroed
    below ``p[3]``. Water (``p[5] == 0``): pale turquoise (175, 238, 238) added with an
    intensity from the liquid's edge distances (Canny edges, distance capped at 20, 3x3 means,
    histogram equalisation, an emboss kernel), scaled to peak ``p[4]``. Mud (``p[5] == 1``):
    where the liquid, blurred by sigma ``p[4]``, is at least 0.8, brown (63, 42, 20) mixed in."""
    mean, std, sigma, threshold, intensity, mud = params
    h, w = x.shape[1:3]
    liquid = draw(rngs, lambda rng: rng.normal(mean, std, (h, w)))
    liquid = ops.gaussian_filter(liquid, sigma)
    liquid[liquid < threshold] = 0
    if mud:
        mask = ops.gaussian_filter((liquid > threshold).astype(np.float32), intensity)
        mask[mask < 0.8] = 0
        mask = mask[..., None]
        brown = np.array([63, 42, 20], dtype=np.float32) / 255
        return x * (1 - mask) + brown * mask
    liquid8 = np.clip(liquid * 255, 0, 255).astype(np.uint8)
    distance = _distance_to(_canny(liquid8, 50, 150), 20)
    distance = np.floor(_box3(distance)).astype(np.uint8)
    emboss = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], dtype=np.float64)
    distance = np.clip(np.round(ops.correlate2d(_equalize(distance).astype(np.float64), emboss)), 0, 255)
    distance = np.round(_box3(distance))
    weight = liquid8 * distance  # the published code weights by the 8-bit liquid layer
    peak = weight.reshape(weight.shape[0], -1).max(axis=1)[:, None, None]
    weight = weight / np.where(peak > 0, peak, 1) * intensity
    turquoise = np.array([175, 238, 238], dtype=np.float32) / 255
    return x + (weight[..., None] * turquoise).astype(np.float32)
