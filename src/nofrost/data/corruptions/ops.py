"""Array operations the corruptions share, written for batches ``(N, H, W[, C])`` in NumPy.

They reproduce what the published generators get from SciPy, scikit-image, OpenCV and
ImageMagick (Gaussian filters, kernel correlation, zooms, warps, motion blur, HSV), with only
element-wise NumPy arithmetic: each output pixel of each image is computed the same way whatever
the batch holds, which keeps generation independent of batch composition.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image

#: Border modes: ``"nearest"`` repeats the edge (SciPy ``nearest``), ``"reflect"`` mirrors
#: including the edge pixel (SciPy ``reflect``, d c b a | a b c d), ``"reflect101"`` mirrors
#: without it (OpenCV's default BORDER_REFLECT_101, d c b | a b c d).
_PAD_MODES = {"nearest": "edge", "reflect": "symmetric", "reflect101": "reflect"}


#: Kernels longer than this are applied as one matrix product per image instead of a sum of
#: shifted copies (ImageNet-C's elastic transform smooths with up to 1,025 taps).
_SHIFT_SUM_MAX_TAPS = 15


def _correlation_matrix(kernel: np.ndarray, n: int, mode: str) -> np.ndarray:
    """The ``(n, n)`` matrix of a correlation along an axis of length ``n``, borders folded in."""
    radius = len(kernel) // 2
    sources = _border_index(np.arange(n)[:, None] + np.arange(len(kernel))[None, :] - radius, n, mode)
    matrix = np.zeros((n, n))
    np.add.at(matrix, (np.repeat(np.arange(n), len(kernel)), sources.ravel()), np.tile(kernel, n))
    return matrix


def correlate1d(x: np.ndarray, kernel: np.ndarray, axis: int, mode: str) -> np.ndarray:
    """Correlate ``x`` with a centred odd-length ``kernel`` along ``axis``."""
    if len(kernel) > _SHIFT_SUM_MAX_TAPS:
        matrix = _correlation_matrix(kernel, x.shape[axis], mode).T.astype(x.dtype)
        moved = np.moveaxis(x, axis, -1)
        # one product per image, so that an image's result never depends on the batch
        return np.moveaxis(np.stack([image @ matrix for image in moved]), -1, axis)
    radius = len(kernel) // 2
    pad = [(0, 0)] * x.ndim
    pad[axis] = (radius, radius)
    padded = np.pad(x, pad, mode=_PAD_MODES[mode])
    length = x.shape[axis]
    out = np.zeros_like(x)
    for j, weight in enumerate(kernel):
        if weight != 0:
            out += np.float32(weight) * np.take(padded, range(j, j + length), axis=axis)
    return out


def gaussian_kernel1d(sigma: float, radius: int) -> np.ndarray:
    """Normalised samples of a Gaussian at ``-radius..radius``."""
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * t**2 / sigma**2)
    return kernel / kernel.sum()


def gaussian_filter(
    x: np.ndarray, sigma: float, *, mode: str = "nearest", truncate: float = 4.0
) -> np.ndarray:
    """Gaussian blur over the two image axes (1, 2), as ``scipy.ndimage.gaussian_filter``
    (and scikit-image's ``filters.gaussian``, which calls it): radius
    ``int(truncate * sigma + 0.5)``; ``sigma == 0`` is the identity."""
    if sigma <= 0:
        return x
    kernel = gaussian_kernel1d(sigma, int(truncate * sigma + 0.5))
    return correlate1d(correlate1d(x, kernel, 1, mode), kernel, 2, mode)


#: Kernels with more non-zero taps than this are applied through the FFT, one image at a time
#: (ImageNet-C's defocus disks have up to 529).
_SHIFT_SUM_MAX_TAPS_2D = 64


def correlate2d(x: np.ndarray, kernel: np.ndarray, mode: str = "reflect101") -> np.ndarray:
    """Correlate the image axes (1, 2) of ``x`` ``(N, H, W, C)`` with an odd square ``kernel``
    (OpenCV ``filter2D``'s default border): small kernels as a sum of shifted copies over the
    non-zero taps, large ones as a product of Fourier transforms of the bordered image."""
    radius = kernel.shape[0] // 2
    pad = [(0, 0), (radius, radius), (radius, radius)] + [(0, 0)] * (x.ndim - 3)
    padded = np.pad(x, pad, mode=_PAD_MODES[mode])
    h, w = x.shape[1:3]
    if np.count_nonzero(kernel) > _SHIFT_SUM_MAX_TAPS_2D:
        size = padded.shape[1:3]
        spectrum = np.conj(np.fft.rfft2(kernel, s=size))
        if x.ndim == 4:
            spectrum = spectrum[..., None]
        # no wrap-around: output (i, j) reads bordered pixels up to (i + 2r, j + 2r) < size
        images = [np.fft.irfft2(np.fft.rfft2(image, axes=(0, 1)) * spectrum, s=size, axes=(0, 1)) for image in padded]
        return np.stack(images)[:, :h, :w].astype(x.dtype)
    out = np.zeros_like(x)
    for i, j in zip(*np.nonzero(kernel)):
        out += np.float32(kernel[i, j]) * padded[:, i : i + h, j : j + w]
    return out


def disk_kernel(radius: float, alias_blur: float) -> np.ndarray:
    """The anti-aliased disk of the published defocus blur: a 17x17 grid (or ``2r + 1`` for
    radius above 8) of the disk ``x² + y² <= r²``, normalised, then smoothed by a 3x3 (5x5)
    Gaussian of sigma ``alias_blur`` with mirrored borders (OpenCV ``GaussianBlur``)."""
    half = 8 if radius <= 8 else int(radius)
    ksize = 3 if radius <= 8 else 5
    t = np.arange(-half, half + 1)
    xx, yy = np.meshgrid(t, t)
    disk = (xx**2 + yy**2 <= radius**2).astype(np.float64)
    disk /= disk.sum()
    kernel = gaussian_kernel1d(alias_blur, ksize // 2)
    blurred = correlate1d(correlate1d(disk[None], kernel, 1, "reflect101"), kernel, 2, "reflect101")
    return blurred[0]


def _border_index(i: np.ndarray, n: int, mode: str) -> np.ndarray:
    """Integer indices folded into ``0..n-1`` by a border mode."""
    if mode == "nearest" or n == 1:
        return np.clip(i, 0, n - 1)
    if mode == "reflect":
        i = np.mod(i, 2 * n)
        return np.where(i >= n, 2 * n - 1 - i, i)
    period = 2 * n - 2
    i = np.mod(i, period)
    return np.where(i >= n, period - i, i)


def sample_bilinear(x: np.ndarray, rows: np.ndarray, cols: np.ndarray, mode: str) -> np.ndarray:
    """Bilinear samples of the images ``x`` ``(N, H, W, C)`` at ``(rows, cols)`` ``(N, H', W')``;
    neighbours outside the image are taken by the border ``mode``."""
    n, h, w = x.shape[:3]
    r0 = np.floor(rows)
    c0 = np.floor(cols)
    fr = (rows - r0).astype(np.float32)[..., None]
    fc = (cols - c0).astype(np.float32)[..., None]
    r0 = r0.astype(np.int64)
    c0 = c0.astype(np.int64)
    ra, rb = _border_index(r0, h, mode), _border_index(r0 + 1, h, mode)
    ca, cb = _border_index(c0, w, mode), _border_index(c0 + 1, w, mode)
    b = np.arange(n).reshape((n,) + (1,) * (rows.ndim - 1))
    top = x[b, ra, ca] * (1 - fc) + x[b, ra, cb] * fc
    bottom = x[b, rb, ca] * (1 - fc) + x[b, rb, cb] * fc
    return top * (1 - fr) + bottom * fr


def _zoom_axis(x: np.ndarray, axis: int, zoom: float) -> np.ndarray:
    """The centre crop of ``x`` along ``axis`` that :func:`clipped_zoom` magnifies, linearly
    interpolated: SciPy ``ndimage.zoom`` (order 1) maps output ``o`` of the ``round(c * zoom)``
    outputs to input ``o * (c - 1) / (out - 1)`` of the ``c = ceil(n / zoom)`` crop."""
    n = x.shape[axis]
    crop = int(np.ceil(n / zoom))
    top = (n - crop) // 2
    out = int(round(crop * zoom))
    trim = (out - n) // 2
    o = np.arange(trim, trim + n, dtype=np.float64)
    pos = o * (crop - 1) / (out - 1) if out > 1 else np.zeros_like(o)
    i0 = np.floor(pos).astype(np.int64)
    frac = pos - i0
    i1 = np.minimum(i0 + 1, crop - 1)
    shape = [1] * x.ndim
    shape[axis] = n
    frac = frac.reshape(shape).astype(np.float32)
    a = np.take(x, top + i0, axis=axis)
    b = np.take(x, top + i1, axis=axis)
    return a * (1 - frac) + b * frac


def clipped_zoom(x: np.ndarray, zoom: float) -> np.ndarray:
    """Magnify the centre of each image ``(N, H, W[, C])`` by ``zoom`` and crop back to ``H x W``
    (the published ``clipped_zoom``)."""
    return _zoom_axis(_zoom_axis(x, 1, zoom), 2, zoom)


def motion_blur(x: np.ndarray, radius: float, sigma: float, angles: np.ndarray) -> np.ndarray:
    """ImageMagick's ``MotionBlurImage`` for each image of ``x`` ``(N, H, W[, C])``: a one-sided
    line of ``2 * ceil(radius) + 1`` taps along ``angles[n]`` (degrees), weighted by a Gaussian
    of ``sigma`` in the tap index, sampling pixel ``(y + round(i sin a), x + round(i cos a))``
    with the edge repeated (ImageMagick's default virtual pixels)."""
    width = 2 * math.ceil(radius) + 1
    taps = np.arange(width, dtype=np.float64)
    weights = np.exp(-(taps**2) / (2 * sigma**2))
    weights /= weights.sum()
    n, h, w = x.shape[:3]
    pad = [(0, 0), (width, width), (width, width)] + [(0, 0)] * (x.ndim - 3)
    padded = np.pad(x, pad, mode="edge")
    out = np.zeros_like(x)
    for b in range(n):
        rad = math.radians(float(angles[b]))
        for i, weight in enumerate(weights):
            dy = math.ceil(i * math.sin(rad) - 0.5)
            dx = math.ceil(i * math.cos(rad) - 0.5)
            out[b] += np.float32(weight) * padded[b, width + dy : width + dy + h, width + dx : width + dx + w]
    return out


def plasma_fractal(rng: np.random.Generator, mapsize: int, wibble_decay: float) -> np.ndarray:
    """A ``mapsize x mapsize`` (power of two) diamond-square height map in [0, 1], as the
    published generator makes its fog: the random offset of each level is ``wibble`` times a
    uniform draw in ``(-wibble, wibble)``, ``wibble`` starting at 100 and divided by
    ``wibble_decay`` per level."""
    if mapsize & (mapsize - 1):
        raise ValueError(f"plasma fractal size must be a power of two, got {mapsize}")
    grid = np.zeros((mapsize, mapsize))
    step = mapsize
    wibble = 100.0

    def wibbled_mean(total: np.ndarray) -> np.ndarray:
        return total / 4 + wibble * rng.uniform(-wibble, wibble, total.shape)

    while step >= 2:
        half = step // 2
        corners = grid[0:mapsize:step, 0:mapsize:step]
        square = corners + np.roll(corners, -1, axis=0)
        square = square + np.roll(square, -1, axis=1)
        grid[half:mapsize:step, half:mapsize:step] = wibbled_mean(square)
        centres = grid[half:mapsize:step, half:mapsize:step]
        corners = grid[0:mapsize:step, 0:mapsize:step]
        left = centres + np.roll(centres, 1, axis=0) + corners + np.roll(corners, -1, axis=1)
        grid[0:mapsize:step, half:mapsize:step] = wibbled_mean(left)
        top = centres + np.roll(centres, 1, axis=1) + corners + np.roll(corners, -1, axis=0)
        grid[half:mapsize:step, 0:mapsize:step] = wibbled_mean(top)
        step //= 2
        wibble /= wibble_decay
    grid -= grid.min()
    return grid / grid.max()


def rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """RGB in [0, 1] to HSV in [0, 1] (scikit-image ``rgb2hsv``: hue 0 and saturation 0 on greys)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    v = rgb.max(axis=-1)
    delta = v - rgb.min(axis=-1)
    safe_delta = np.where(delta > 0, delta, 1)
    s = np.where(v > 0, delta / np.where(v > 0, v, 1), 0)
    hue = np.where(
        r == v, (g - b) / safe_delta, np.where(g == v, 2 + (b - r) / safe_delta, 4 + (r - g) / safe_delta)
    )
    hue = np.where(delta > 0, (hue / 6) % 1, 0)
    return np.stack([hue, s, v], axis=-1)


def hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    """HSV in [0, 1] back to RGB (scikit-image ``hsv2rgb``)."""
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    sector = np.floor(h * 6)
    f = h * 6 - sector
    sector = sector.astype(np.int64) % 6
    p = v * (1 - s)
    q = v * (1 - f * s)
    t = v * (1 - (1 - f) * s)
    choices = [
        np.stack(c, axis=-1) for c in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))
    ]
    return np.choose(sector[..., None], choices)


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """Luma ``0.299 R + 0.587 G + 0.114 B`` (OpenCV ``COLOR_RGB2GRAY``), keeping a channel axis."""
    return (rgb @ np.array([0.299, 0.587, 0.114], dtype=rgb.dtype))[..., None]


def jpeg_round_trip(images: np.ndarray, quality: int) -> np.ndarray:
    """Each uint8 ``(H, W, 3)`` image of a batch encoded as a Pillow JPEG at ``quality`` and
    decoded (``optimize=True``, which the published ImageNet-C files used, changes only the
    entropy coding, not the pixels)."""
    out = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "JPEG", quality=quality)
        out.append(np.asarray(Image.open(buffer).convert("RGB")))
    return np.stack(out)
