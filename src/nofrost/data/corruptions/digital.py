"""Digital corruptions: brightness, contrast, saturation, JPEG, pixelation, elastic warp."""

from __future__ import annotations

import numpy as np
from PIL import Image

from nofrost.data.corruptions import ops
from nofrost.data.corruptions.base import CORRUPTIONS, draw


@CORRUPTIONS.register("brightness")
def brightness(x, params, rngs):
    """Add ``params[0]`` to the HSV value (clipped to 1)."""
    (delta,) = params
    hsv = ops.rgb_to_hsv(x)
    hsv[..., 2] = np.clip(hsv[..., 2] + delta, 0, 1)
    return ops.hsv_to_rgb(hsv)


@CORRUPTIONS.register("contrast")
def contrast(x, params, rngs):
    """Scale each channel's distance to the image's channel mean by ``params[0]``."""
    (factor,) = params
    means = x.reshape(x.shape[0], -1, x.shape[-1]).mean(axis=1)[:, None, None, :]
    return (x - means) * np.float32(factor) + means


@CORRUPTIONS.register("saturate")
def saturate(x, params, rngs):
    """HSV saturation ``s -> clip(s * params[0] + params[1], 0, 1)``."""
    factor, shift = params
    hsv = ops.rgb_to_hsv(x)
    hsv[..., 1] = np.clip(hsv[..., 1] * factor + shift, 0, 1)
    return ops.hsv_to_rgb(hsv)


def _to_pil(image: np.ndarray) -> Image.Image:
    return Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8))


@CORRUPTIONS.register("jpeg_compression")
def jpeg_compression(x, params, rngs):
    """Encode and decode with Pillow's JPEG at quality ``params[0]``."""
    as_bytes = np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)
    return ops.jpeg_round_trip(as_bytes, params[0]).astype(np.float32) / 255


@CORRUPTIONS.register("pixelate")
def pixelate(x, params, rngs):
    """Box-downsample to ``int(side * params[0])`` and box-upsample back (Pillow)."""
    (fraction,) = params
    h, w = x.shape[1:3]
    small = (int(w * fraction), int(h * fraction))
    out = [np.asarray(_to_pil(i).resize(small, Image.BOX).resize((w, h), Image.BOX)) for i in x]
    return np.stack(out).astype(np.float32) / 255


@CORRUPTIONS.register("elastic_transform")
def elastic_transform(x, params, rngs):
    """A random affine warp (the three points ``centre + (s, s)``, ``centre + (s, -s)`` and
    ``centre - (s, s)``, ``s = side // 3``, each moved by up to ``params[2]`` pixels), then a
    per-pixel displacement field: uniform noise in (-1, 1) smoothed by a Gaussian of sigma
    ``params[1]`` (truncated at 3 sigma, mirrored borders) and scaled by ``params[0]``."""
    alpha, sigma, max_shift = params
    n, h, w = x.shape[:3]
    centre = np.array([h // 2, w // 2], dtype=np.float64)
    side = min(h, w) // 3
    source = np.array([centre + side, [centre[0] + side, centre[1] - side], centre - side])
    moves = draw(rngs, lambda rng: rng.uniform(-max_shift, max_shift, (3, 2)))
    field = draw(rngs, lambda rng: rng.uniform(-1, 1, (2, h, w)))
    rows, cols = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    warped_rows, warped_cols = [], []
    for b in range(n):
        # the affine map that takes the source points (x, y) to the moved ones, inverted so that
        # each output pixel samples the input (OpenCV warpAffine without WARP_INVERSE_MAP)
        forward = np.linalg.solve(np.c_[source, np.ones(3)], source + moves[b]).T
        inverse = np.linalg.inv(np.vstack([forward, [0, 0, 1]]))[:2]
        warped_cols.append(inverse[0, 0] * cols + inverse[0, 1] * rows + inverse[0, 2])
        warped_rows.append(inverse[1, 0] * cols + inverse[1, 1] * rows + inverse[1, 2])
    x = ops.sample_bilinear(x, np.stack(warped_rows), np.stack(warped_cols), "reflect101")
    smooth = ops.gaussian_filter(field.transpose(0, 2, 3, 1), sigma, mode="reflect", truncate=3)
    dx, dy = smooth[..., 0] * alpha, smooth[..., 1] * alpha
    return ops.sample_bilinear(x, rows + dy, cols + dx, "reflect")
