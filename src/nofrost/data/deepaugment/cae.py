"""DeepAugment's CAE: the convolutional auto-encoder of Theis et al. 2017 (the 32x32x32 binary
bottleneck), its weights and its code randomly distorted, after hendrycks/imagenet-r
``DeepAugment/CAE_Model/cae_32x32x32_zero_pad_bin.py`` (architecture and activation
distortions) and ``DeepAugment/CAE_distort_imagenet.py`` (weight distortions, ``get_weights``),
commit 166476b; the NoFrost reference copies both (``deepaug/CAE_distort_imagenet.py``).

The module names match the published state dict (``CAE_Weights/model_final.state``), so those
weights load as they are. Where the reference code's arithmetic differs from what its comments
say, ours does what the code does; docs/methods.md lists these cases.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nofrost.data.deepaugment import _random

# get_weights: NUM_DISTORTIONS = 8 with random.sample(range(NUM_DISTORTIONS), 1), so options
# 0-7 are drawn (option 8, "keep the largest tap", never is). Layer ranges by option
# (OPTION_LAYER_MAPPING over the 21 conv layers in state-dict order).
WEIGHT_OPTIONS = 8
OPTION_LAYERS = {0: range(11, 16), 3: range(10, 14)}
DEFAULT_LAYERS = range(8, 14)
ACTIVATION_OPTIONS = 9  # forward: np.random.choice(range(9))


def _block() -> nn.Sequential:
    return nn.Sequential(
        nn.ZeroPad2d((1, 1, 1, 1)), nn.Conv2d(128, 128, 3), nn.LeakyReLU(),
        nn.ZeroPad2d((1, 1, 1, 1)), nn.Conv2d(128, 128, 3),
    )


class CAE(nn.Module):
    """The auto-encoder (reference layer names); :func:`distorted_cae_forward` runs it."""

    def __init__(self) -> None:
        super().__init__()
        self.e_conv_1 = nn.Sequential(nn.ZeroPad2d((1, 2, 1, 2)), nn.Conv2d(3, 64, 5, stride=2), nn.LeakyReLU())
        self.e_conv_2 = nn.Sequential(nn.ZeroPad2d((1, 2, 1, 2)), nn.Conv2d(64, 128, 5, stride=2), nn.LeakyReLU())
        self.e_block_1, self.e_block_2, self.e_block_3 = _block(), _block(), _block()
        self.e_conv_3 = nn.Sequential(nn.Conv2d(128, 32, 5, padding=2), nn.Tanh())
        self.d_up_conv_1 = nn.Sequential(
            nn.Conv2d(32, 64, 3), nn.LeakyReLU(), nn.ZeroPad2d((1, 1, 1, 1)), nn.ConvTranspose2d(64, 128, 2, stride=2)
        )
        self.d_block_1, self.d_block_2, self.d_block_3 = _block(), _block(), _block()
        self.d_up_conv_2 = nn.Sequential(
            nn.Conv2d(128, 32, 3), nn.LeakyReLU(), nn.ZeroPad2d((1, 1, 1, 1)), nn.ConvTranspose2d(32, 256, 2, stride=2)
        )
        self.d_up_conv_3 = nn.Sequential(
            nn.Conv2d(256, 16, 3), nn.LeakyReLU(), nn.ReflectionPad2d((2, 2, 2, 2)), nn.Conv2d(16, 3, 3), nn.Tanh()
        )

    def encode(self, x: Tensor) -> Tensor:
        ec2 = self.e_conv_2(self.e_conv_1(x))
        b1 = self.e_block_1(ec2) + ec2
        b2 = self.e_block_2(b1) + b1
        b3 = self.e_block_3(b2) + b2
        return self.e_conv_3(b3)  # in [-1, 1]

    def decode(self, encoded: Tensor) -> Tensor:
        uc1 = self.d_up_conv_1(encoded * 2.0 - 1)
        d1 = self.d_block_1(uc1) + uc1
        d2 = self.d_block_2(d1) + d1
        d3 = self.d_block_3(d2) + d2
        return self.d_up_conv_3(self.d_up_conv_2(d3))

    def forward(self, x: Tensor) -> Tensor:
        return self.decode(_binarize(self.encode(x)))


def distort_cae_weights(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """One draw of ``get_weights``' distortions applied to a copy of ``state``."""
    state = {k: v.clone() for k, v in state.items()}
    layers = [k[: -len(".weight")] for k, v in state.items() if k.endswith(".weight") and v.dim() == 4]
    option = _random.randint(0, WEIGHT_OPTIONS - 1)
    candidates = OPTION_LAYERS.get(option, DEFAULT_LAYERS)
    i, j = _random.choice(candidates), _random.choice(candidates)
    w, b = f"{layers[i]}.weight", f"{layers[i]}.bias"
    weight = state[w]
    if option == 0:
        # The reference flips layer j's weight twice (its "bias_j" names the weight): no change.
        state[w], state[b] = weight.flip(0), state[b].flip(0)
    elif option in (1, 2, 3):  # 12 filters negated, 25 zeroed, 25 through -gelu; one at a time
        count, op = {1: (12, torch.neg), 2: (25, torch.zeros_like), 3: (25, lambda t: -F.gelu(t))}[option]
        for _ in range(count):
            k = _random.randint(0, weight.shape[0] - 1)
            weight[k], state[b][k] = op(weight[k]), op(state[b][k])
    elif option == 4:  # the reference's 4*torch.rand_like(w - 1) is 4*U[0, 1)
        for name in (w, f"{layers[j]}.weight"):
            state[name] = state[name] * (1 + 2 * _random.uniform() * (4 * torch.rand_like(state[name])))
    elif option == 5:
        mask = torch.rand_like(weight).round()
        state[w] = weight * (mask if _random.chance(0.5) else mask * 2 - 1)
    elif option == 6:
        state[w] = torch.rot90(weight, k=_random.randint(1, 3), dims=(2, 3))
    elif option == 7:
        filters = sorted({_random.randint(0, weight.shape[0] - 1) for _ in range(weight.shape[0] // 5)})
        weight[filters] = -weight[filters]
    return state


def _binarize(code: Tensor) -> Tensor:
    """Stochastic binarisation of a code in [-1, 1] to {0, 1}: 1 with probability (1 + code) / 2."""
    return (torch.rand_like(code) <= (1 + code) / 2).to(code.dtype)


def _identity_taps(c: int, like: Tensor) -> Tensor:
    z = torch.zeros(c, c, 3, 3, device=like.device, dtype=like.dtype)
    z[torch.arange(c), torch.arange(c), 1, 1] = 1
    return z


def distort_code(code: Tensor) -> tuple[Tensor, int]:
    """The forward's distortion of the code ``e_conv_3`` returns (options 1-8; option 0 acts
    after binarisation, see :func:`distorted_cae_forward`). Returns (code, option)."""
    option = _random.randint(0, ACTIVATION_OPTIONS - 1)
    _, c, h, w = code.shape
    if option == 1:
        code = code * (torch.rand(h, w, device=code.device) > 0.2).to(code.dtype)
    elif option == 2:
        code = code * ((torch.rand(h, w, device=code.device) > 0.1).to(code.dtype) * 2 - 1)
    elif option == 3:
        perm = torch.cat([torch.randperm(10), torch.arange(10, c)]).to(code.device)
        code = code[:, perm]
    elif option in (4, 5):
        # each chosen channel, an (N, H, W) slice, flipped over two of its three axes (the
        # batch axis included); 5 random channels, or all (option 5 swaps the two axes
        # half-way, which flips the same)
        dims = torch.randperm(3)[:2].tolist()
        code = code.clone()
        channels = [_random.randint(0, c - 1) for _ in range(5)] if option == 4 else range(c)
        for ch in channels:
            code[:, ch] = code[:, ch].flip(dims)
    elif option == 6:
        z = _identity_taps(c, code) + (torch.rand(c, c, 3, 3, device=code.device, dtype=code.dtype) - 0.5) * 0.2
        code = F.conv2d(code, z, padding=1)
    elif option == 7:
        z = _identity_taps(c, code)
        for j in range(c):
            if _random.chance(0.5):  # the reference's index -1 wraps to 2
                z[j, _random.randint(0, c - 1), _random.randint(-1, 1) % 3, _random.randint(-1, 1) % 3] = 1
        code = F.conv2d(code, z, padding=1)
    elif option == 8:
        z = torch.zeros(c, c, 3, 3, device=code.device, dtype=code.dtype)
        sx, sy = _random.randint(0, 2), _random.randint(0, 2)
        for j in range(c):
            if _random.chance(0.2):
                sx, sy = _random.randint(0, 2), _random.randint(0, 2)
            z[j, j, sx, sy] = 1
        code = F.conv2d(code, z, padding=1)
    return code, option


def distorted_cae_forward(net: CAE, x: Tensor) -> Tensor:
    """The reference's ``CAE.forward``: encode, distort the code, binarise, decode; images in
    [0, 1] in, the decoder's tanh output clipped to [0, 1] out (as the reference saves it)."""
    code, option = distort_code(net.encode(x))
    encoded = _binarize(code)
    if option == 0:  # the reference's rand_like(encoded - 1) is U[0, 1)
        encoded = encoded * (3 + 2 * _random.uniform() * (2 * torch.rand_like(encoded)))
    out = net.decode(encoded)
    if out.shape[-2:] != x.shape[-2:]:  # sizes not divisible by 4
        out = F.interpolate(out, size=x.shape[-2:], mode="bilinear", antialias=True, align_corners=False)
    return out.clamp(0, 1)
