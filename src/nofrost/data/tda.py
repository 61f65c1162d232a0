"""Texture-debiased augmentation (TDA; Hermann et al. 2020), with the NoFrost reference settings.

The settings are those of ``imagenet_texture_debias_dataset`` in amazon-science/
normalizer-free-robust-training (commit 619d030, ``dataloaders/imagenet.py``):

- a less aggressive random-resized crop, area fraction in [0.64, 1] (line 94,
  ``min_crop_scale=0.64``; line 107) instead of the standard [0.08, 1] (line 19), with
  torchvision's default aspect ratios [3/4, 4/3];
- a horizontal flip with probability 1/2 (line 108);
- with probability 1/2 (line 109), SimCLR's colour distortion of strength s = 1 (lines 83-92):
  ``ColorJitter(0.8s, 0.8s, 0.8s, 0.2s)`` applied with probability 0.8, then grayscale with
  probability 0.2.

Two implementations of the same distribution:

- :func:`tda_transform`, torchvision ``transforms.v2`` on one PIL image, for folder datasets
  (ImageNet), where it runs in the DataLoader's workers;
- :func:`texture_debiased_batch`, batched on the device for in-memory tensor datasets
  (CIFAR-10), where every image of the batch draws its own crop, flip, jitter factors and
  jitter order in one pass. ``transforms.v2`` draws one set of parameters per call, so the
  batched path writes the per-example ops itself; ``tests/data/test_data_tda.py`` checks each
  op against its ``transforms.v2.functional`` counterpart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

CROP_SCALE = (0.64, 1.0)  # dataloaders/imagenet.py:94,107
CROP_RATIO = (3 / 4, 4 / 3)  # torchvision RandomResizedCrop's default
FLIP_P = 0.5  # RandomHorizontalFlip's default, dataloaders/imagenet.py:108
DISTORT_P = 0.5  # dataloaders/imagenet.py:109
JITTER_STRENGTH = 1.0  # get_color_distortion(s=1.0), dataloaders/imagenet.py:83
JITTER_P = 0.8  # dataloaders/imagenet.py:87
GRAY_P = 0.2  # dataloaders/imagenet.py:88
# ColorJitter(0.8s, 0.8s, 0.8s, 0.2s), dataloaders/imagenet.py:86
BRIGHTNESS = CONTRAST = SATURATION = 0.8 * JITTER_STRENGTH
HUE = 0.2 * JITTER_STRENGTH
_CROP_ATTEMPTS = 10  # torchvision RandomResizedCrop.get_params


def tda_transform(image_size: int) -> v2.Compose:
    """TDA of one PIL image (or uint8 tensor) to a float32 CHW ``image_size`` square in [0, 1]."""
    distortion = v2.Compose([
        v2.RandomApply([v2.ColorJitter(BRIGHTNESS, CONTRAST, SATURATION, HUE)], p=JITTER_P),
        v2.RandomGrayscale(p=GRAY_P),
    ])
    return v2.Compose([
        v2.RandomResizedCrop(image_size, scale=CROP_SCALE, ratio=CROP_RATIO, antialias=True),
        v2.RandomHorizontalFlip(p=FLIP_P),
        v2.RandomApply([distortion], p=DISTORT_P),
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
    ])


@dataclass
class TDAParams:
    """Per-example draws of one batch: crop boxes (top, left, height, width in pixels), flips,
    whether the colour distortion, the jitter and the grayscale apply, the jitter factors
    (brightness, contrast, saturation, hue) and the jitter order (a permutation of 0-3)."""

    boxes: Tensor  # (N, 4) int64
    flip: Tensor  # (N,) bool
    jitter: Tensor  # (N,) bool: distortion and jitter both drawn
    gray: Tensor  # (N,) bool: distortion and grayscale both drawn
    factors: Tensor  # (N, 4) float32
    order: Tensor  # (N, 4) int64


def draw_tda_params(n: int, height: int, width: int, generator: torch.Generator | None = None,
                    device: torch.device | str = "cpu") -> TDAParams:
    """Draw :class:`TDAParams` for ``n`` images of ``height`` x ``width`` as torchvision does
    (``RandomResizedCrop.get_params``: ten tries, then the centre crop)."""
    draw = dict(generator=generator, device=generator.device if generator is not None else device)
    area = height * width
    target = area * (CROP_SCALE[0] + (CROP_SCALE[1] - CROP_SCALE[0]) * torch.rand(n, _CROP_ATTEMPTS, **draw))
    log_lo, log_hi = math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1])
    aspect = torch.exp(log_lo + (log_hi - log_lo) * torch.rand(n, _CROP_ATTEMPTS, **draw))
    w = torch.sqrt(target * aspect).round().long()
    h = torch.sqrt(target / aspect).round().long()
    valid = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = valid.long().argmax(1)
    found = valid.any(1)
    w = torch.where(found, w.gather(1, first[:, None])[:, 0], _fallback_size(height, width)[1])
    h = torch.where(found, h.gather(1, first[:, None])[:, 0], _fallback_size(height, width)[0])
    u = torch.rand(n, 2, **draw)
    top = torch.where(found, (u[:, 0] * (height - h + 1)).long(), (height - h) // 2)
    left = torch.where(found, (u[:, 1] * (width - w + 1)).long(), (width - w) // 2)
    flip = torch.rand(n, **draw) < FLIP_P
    distort = torch.rand(n, **draw) < DISTORT_P
    jitter = distort & (torch.rand(n, **draw) < JITTER_P)
    gray = distort & (torch.rand(n, **draw) < GRAY_P)
    spread = torch.tensor([BRIGHTNESS, CONTRAST, SATURATION, HUE], device=draw["device"])
    centre = torch.tensor([1.0, 1.0, 1.0, 0.0], device=draw["device"])
    factors = centre + spread * (2 * torch.rand(n, 4, **draw) - 1)
    order = torch.rand(n, 4, **draw).argsort(1)
    return TDAParams(torch.stack([top, left, h, w], 1), flip, jitter, gray, factors, order)


def _fallback_size(height: int, width: int) -> tuple[int, int]:
    """torchvision's centre crop when no try fits: the whole image, aspect clamped to CROP_RATIO."""
    ratio = width / height
    if ratio < CROP_RATIO[0]:
        return round(width / CROP_RATIO[0]), width
    if ratio > CROP_RATIO[1]:
        return height, round(height * CROP_RATIO[1])
    return height, width


def texture_debiased_batch(images: Tensor, generator: torch.Generator | None = None,
                           params: TDAParams | None = None) -> Tensor:
    """TDA of every image of a ``(N, 3, H, W)`` batch (uint8 or float in [0, 1]), on its device.

    Returns float32 images in [0, 1] of the input's shape. The draws come from ``generator``
    (any device; the global RNG when None) unless ``params`` are given.
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"texture-debiased augmentation expects (N, 3, H, W) RGB batches, got shape {tuple(images.shape)}")
    x = images.float().div(255) if images.dtype == torch.uint8 else images.float()
    n, _, height, width = x.shape
    if params is None:
        params = draw_tda_params(n, height, width, generator, device=x.device)
    params = TDAParams(*(t.to(x.device) for t in vars(params).values()))
    x = resized_crops(x, params.boxes)
    x = torch.where(params.flip[:, None, None, None], x.flip(-1), x)
    x = torch.where(params.jitter[:, None, None, None], color_jitter(x, params.factors, params.order), x)
    gray = TF.rgb_to_grayscale(x, num_output_channels=3)
    return torch.where(params.gray[:, None, None, None], gray, x)


def resized_crops(x: Tensor, boxes: Tensor) -> Tensor:
    """Crop each image to its box and resize it back to the image size, bilinearly.

    Matches ``transforms.v2.functional.resized_crop`` (bilinear, half-pixel centres, edge
    samples clamped to the crop) for crops no larger than the output, which is always the case
    here: the output is the full image.
    """
    n, _, height, width = x.shape
    top, left, h, w = (boxes[:, i, None].to(x.dtype) for i in range(4))

    def source(length: Tensor, offset: Tensor, size: int) -> Tensor:
        # Pixel centres of the output mapped into the crop, clamped to it, then normalised for
        # grid_sample over the whole image (align_corners=False).
        pos = (torch.arange(size, device=x.device, dtype=x.dtype) + 0.5) * length / size - 0.5
        pos = torch.minimum(pos.clamp(min=0), length - 1) + offset
        return (2 * pos + 1) / size - 1

    gy, gx = source(h, top, height), source(w, left, width)  # (N, H), (N, W)
    grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), -1)  # (N, H, W, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def color_jitter(x: Tensor, factors: Tensor, order: Tensor) -> Tensor:
    """torchvision's ColorJitter with per-example factors and order: brightness, contrast,
    saturation (blend factors) and hue (shift in turns), applied in ``order``."""
    ops = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)
    for position in range(4):
        op_here = order[:, position]
        out = x
        for index, op in enumerate(ops):
            chosen = (op_here == index)[:, None, None, None]
            out = torch.where(chosen, op(x, factors[:, index]), out)
        x = out
    return x


def _blend(x: Tensor, other: Tensor, factor: Tensor) -> Tensor:
    f = factor[:, None, None, None]
    return (f * x + (1 - f) * other).clamp(0, 1)


def adjust_brightness(x: Tensor, factor: Tensor) -> Tensor:
    return _blend(x, torch.zeros_like(x), factor)


def adjust_contrast(x: Tensor, factor: Tensor) -> Tensor:
    mean = TF.rgb_to_grayscale(x).mean(dim=(-3, -2, -1), keepdim=True)
    return _blend(x, mean, factor)


def adjust_saturation(x: Tensor, factor: Tensor) -> Tensor:
    return _blend(x, TF.rgb_to_grayscale(x), factor)


def adjust_hue(x: Tensor, shift: Tensor) -> Tensor:
    """Rotate the hue by ``shift`` turns (HSV), per example."""
    r, g, b = x.unbind(1)
    value, _ = x.max(1)
    chroma = value - x.min(1).values
    safe = torch.where(chroma > 0, chroma, torch.ones_like(chroma))
    saturation = torch.where(value > 0, chroma / torch.where(value > 0, value, torch.ones_like(value)), torch.zeros_like(value))
    hue = torch.where(value == r, (g - b) / safe, torch.where(value == g, 2 + (b - r) / safe, 4 + (r - g) / safe))
    hue = torch.where(chroma > 0, hue / 6 % 1.0, torch.zeros_like(hue))
    hue = (hue + shift[:, None, None]) % 1.0
    sector = hue * 6
    k = (torch.tensor([5.0, 3.0, 1.0], device=x.device)[None, :, None, None] + sector[:, None]) % 6
    weight = torch.clamp(torch.minimum(k, 4 - k), 0, 1)
    return value[:, None] - value[:, None] * saturation[:, None] * weight
