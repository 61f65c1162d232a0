"""DeepAugment's EDSR: the EDSR-baseline x4 super-resolution network (Lim et al. 2017), its
weights and its features randomly distorted, after hendrycks/imagenet-r
``DeepAugment/EDSR_distort_imagenet.py`` (commit 166476b; the NoFrost reference copies it as
``deepaug/EDSR_distort_imagenet.py``) and EDSR-PyTorch's ``model/common.py`` (MeanShift with
the DIV2K mean (0.4488, 0.4371, 0.4040), ResBlock = conv-ReLU-conv, Upsampler x4 = two
conv + PixelShuffle(2)).

``EDSR()``'s defaults there: 16 residual blocks, 64 features, scale 4, res_scale 1, pixel range
255. Module names match the published ``edsr_baseline_x4.pt``. The reference resizes images to
128 pixels and keeps the x4 output; ours maps the output back to the input size (antialiased
bilinear), since training takes it at the size of the clean view.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nofrost.data.deepaugment import _random

RESBLOCKS, FEATURES, SCALE, PIXEL_RANGE = 16, 64, 4, 255.0
DIV2K_MEAN = (0.4488, 0.4371, 0.4040)
WEIGHT_DISTORTIONS_PER_DRAW = 3  # np.random.randint(0, 17, size=3)
WEIGHT_OPTIONS = 17
LAPLACIAN = ((0.0, 1.0, 0.0), (1.0, -4.0, 1.0), (0.0, 1.0, 0.0))  # option 4
EDGE = ((-1.0, -1.0, -1.0), (-1.0, 8.0, -1.0), (-1.0, -1.0, -1.0))  # option 5


def _conv(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1)


class ResBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv(FEATURES, FEATURES), nn.ReLU(), _conv(FEATURES, FEATURES))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x) + x


class EDSR(nn.Module):
    """EDSR-baseline x4 (reference layer names). The mean shifts are fixed, not weights."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Sequential(_conv(3, FEATURES))
        self.body = nn.Sequential(*[ResBlock() for _ in range(RESBLOCKS)], _conv(FEATURES, FEATURES))
        upsampler = nn.Sequential(_conv(FEATURES, 4 * FEATURES), nn.PixelShuffle(2), _conv(FEATURES, 4 * FEATURES), nn.PixelShuffle(2))
        self.tail = nn.Sequential(upsampler, _conv(FEATURES, 3))


def distort_edsr_weights(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Three draws of ``get_weights``' 17 distortions applied in turn to a copy of ``state``."""
    state = {k: v.clone() for k, v in state.items()}

    def key(block: int, conv: int) -> str:
        return f"body.{block}.body.{conv}.weight"

    def every_third() -> int:  # np.random.choice(np.arange(0, 10, 3))
        return _random.choice((0, 3, 6, 9))

    for _ in range(WEIGHT_DISTORTIONS_PER_DRAW):
        option = _random.randint(0, WEIGHT_OPTIONS - 1)
        if option == 0:
            i = every_third()
            for conv in (0, 2):
                for suffix in ("weight", "bias"):
                    name = f"body.{i}.body.{conv}.{suffix}"
                    state[name] = state[name].flip(0)
        elif option == 1:
            i = _random.choice((1, 4, 7))
            for suffix in ("weight", "bias"):
                state[f"body.{i}.body.0.{suffix}"] = -state[f"body.{i}.body.0.{suffix}"]
        elif option == 2:
            i = every_third()
            for suffix in ("weight", "bias"):
                state[f"body.{i}.body.0.{suffix}"] = torch.zeros_like(state[f"body.{i}.body.0.{suffix}"])
        elif option == 3:
            i = every_third()
            for conv in (0, 2):
                state[key(i, conv)] = -F.gelu(state[key(i, conv)])
        elif option in (4, 5):
            i = every_third()
            taps = torch.tensor(LAPLACIAN if option == 4 else EDGE, device=state[key(i, 0)].device)
            state[key(i, 0)] = state[key(i, 0)] * taps
        elif option == 6:  # the reference's 2*torch.rand_like(w - 1) is 2*U[0, 1)
            i = every_third()
            w = state[key(i, 2)]
            state[key(i, 2)] = w * (1 + 2 * _random.uniform() * (2 * torch.rand_like(w)))
        elif option == 7:
            i = every_third()
            state[key(i, 0)] = state[key(i, 0)].flip(-1)
            state[key(i, 2)] = -state[key(i, 2)]
        elif option == 8:
            i = _random.choice((1, 5, 9))
            w = state[key(i, 0)]
            z = torch.zeros_like(w)
            for j in range(z.shape[0]):
                z[:, j, _random.randint(0, 2), _random.randint(0, 2)] = _random.choice((1.0, -1.0))
            state[key(i, 0)] = F.conv2d(w, z, padding=1)
        elif option == 9:
            i = every_third()
            w = state[key(i, 0)]
            z = (2 * torch.rand_like(w) * _random.uniform() - 1) / 6.0
            state[key(i, 0)] = F.conv2d(w, z, padding=1)
        elif option == 10:
            i = _random.choice((1, 5, 9))
            w = state[key(i, 2)]
            concentration = torch.full((FEATURES, FEATURES, 9), 0.1)
            z = torch.distributions.Dirichlet(concentration).sample().view(FEATURES, FEATURES, 3, 3).to(w)
            state[key(i, 2)] = F.conv2d(w, z, padding=1)
        elif option == 11:
            i = _random.randint(0, 14)
            w = state[key(i, 2)]
            state[key(i, 2)] = w + (torch.rand_like(w) - 0.5) * 1.0
        elif option == 12:
            for _ in range(5):
                i, conv = _random.randint(0, 14), _random.choice((0, 2))
                k, dims = _random.randint(1, 3), ((2, 3) if _random.randint(0, 1) == 0 else (0, 1))
                state[key(i, conv)] = torch.rot90(state[key(i, conv)], k=k, dims=dims)
        elif option in (13, 14):  # random ±1 (13) or 0/1 (14) masks on five blocks' first conv
            for i in [_random.randint(0, 14) for _ in range(5)]:
                mask = torch.rand_like(state[key(i, 0)]).round()
                state[key(i, 0)] = state[key(i, 0)] * (mask * 2 - 1 if option == 13 else mask)
        elif option == 15:
            for i in [_random.randint(0, 14) for _ in range(5)]:
                filters = [_random.randint(0, FEATURES - 1) for _ in range(32)]
                w = state[key(i, 0)]
                w[sorted(set(filters))] *= -1  # indexed assignment: a repeated filter flips once
        elif option == 16:
            for _ in range(5):
                i, conv = _random.randint(0, 14), _random.choice((0, 2))
                w = state[key(i, conv)].reshape(FEATURES, FEATURES, 9)
                top = w.topk(1, dim=2)
                state[key(i, conv)] = torch.zeros_like(w).scatter(2, top.indices, top.values).view(FEATURES, FEATURES, 3, 3)
    return state


def distorted_edsr_forward(net: EDSR, x: Tensor) -> Tensor:
    """The reference's ``EDSR.forward`` with one pre-distortion (``random.randint(1, 4)``, 4 =
    none) and one body distortion (``random.randint(1, 5)``, 5 = none), on images in [0, 1]."""
    mean = x.new_tensor(DIV2K_MEAN)[:, None, None] * PIXEL_RANGE
    h = net.head(x * PIXEL_RANGE - mean)
    pre = _random.randint(1, 4)
    if pre == 1:
        h = h.clone()
        for _ in range(5):  # the reference's tuple "swap" of two views copies c2 into c1
            c1, c2 = _random.randint(0, FEATURES - 1), _random.randint(0, FEATURES - 1)
            h[:, c1] = h[:, c2]
    elif pre == 2:
        h = h * torch.round(torch.rand_like(h) + 0.45)
    elif pre == 3:
        h = h * (torch.round(torch.rand_like(h) + 0.475) * 2 - 1)
    body = _random.randint(1, 5)
    if body in (1, 2, 3):
        res = net.body[:5](h)
        if body == 1:
            res = -res
        elif body == 2:
            res = F.relu(res) if _random.randint(0, 2) == 1 else F.gelu(res)
        else:
            res = res.flip([1, 2] if _random.randint(0, 2) == 1 else [1, 3])
        res = net.body[5:](res)
    elif body == 4:
        # The reference applies every kept layer to the block input and keeps the last output:
        # the last layer not among three skipped ones (randint(2, 16)), applied to h.
        skipped = {_random.randint(2, 16) for _ in range(3)}
        kept = [i for i in range(len(net.body)) if i not in skipped]
        res = net.body[kept[-1]](h)
    else:
        res = net.body(h)
    out = (net.tail(res + h) + mean) / PIXEL_RANGE
    if out.shape[-2:] != x.shape[-2:]:
        out = F.interpolate(out, size=x.shape[-2:], mode="bilinear", antialias=True, align_corners=False)
    return out.clamp(0, 1)
