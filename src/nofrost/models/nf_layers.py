"""Building blocks of normalizer-free networks (Brock et al., 2021a).

Brock, De & Smith, "Characterizing signal propagation to close the performance gap in
unnormalized ResNets", ICLR 2021 (arXiv:2101.08692):

- Scaled Weight Standardization (Sec. 4.1): ``W_hat = gamma * (W - mean(W)) / (std(W) * sqrt(N))``
  per output channel (N = fan-in), times a learnable per-channel gain. Zero-mean rows remove
  the mean shift a ReLU would otherwise carry through every layer, and unit-norm rows keep
  the variance of the pre-activations equal to the second moment of the inputs.
- gamma (Sec. 4.1, Appendix D): the constant that restores unit variance after the
  nonlinearity. For ReLU and z ~ N(0, 1): Var(relu(z)) = (1 - 1/pi) / 2, so analytically
  gamma = sqrt(2 / (1 - 1/pi)) = 1.7129; the reference implementation (DeepMind
  ``nfnets/base.py``) and timm use the sampled estimate 1.7139588594436646, and so do we,
  so that our layers compute exactly what the NoFrost (timm) models compute.

We use timm's ``ScaledStdConv2d`` for the convolution. As in timm, gamma is folded into the
weight scale of the convolution that consumes a ReLU output (mathematically identical to
scaling the ReLU, and free at run time); where a ReLU output is not consumed by a
convolution (the final activation before pooling) the ReLU itself is scaled
(``ScaledReLU``), as in the paper's reference implementation.
"""

from __future__ import annotations

import math

import torch
from timm.layers import ScaledStdConv2d
from torch import nn

#: gamma for ReLU, 1 / std(relu(z)) for z ~ N(0, 1): the reference (and timm) constant.
RELU_GAMMA: float = 1.7139588594436646

#: the analytic value sqrt(2 / (1 - 1/pi)), for reference (0.06% below RELU_GAMMA).
RELU_GAMMA_ANALYTIC: float = math.sqrt(2.0 / (1.0 - 1.0 / math.pi))

#: eps inside the weight standardization, as timm's NF-ResNet configs use.
WS_EPS: float = 1e-5


def ws_conv(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    *,
    gamma: float = 1.0,
    bias: bool = True,
    gain_init: float = 1.0,
) -> ScaledStdConv2d:
    """A Scaled-WS convolution (Brock et al., 2021a, Sec. 4.1) with "same" padding.

    ``gamma`` is the nonlinearity gain of the activation feeding this convolution
    (``RELU_GAMMA`` after a ReLU, 1 for the image-input stem).
    """
    return ScaledStdConv2d(
        in_channels,
        out_channels,
        kernel_size,
        stride=stride,
        padding=kernel_size // 2,
        bias=bias,
        gamma=gamma,
        eps=WS_EPS,
        gain_init=gain_init,
    )


def he_conv(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    *,
    bias: bool = True,
    nonlinearity: str = "relu",
) -> nn.Conv2d:
    """A plain convolution with He (fan-in, ReLU gain) initialization.

    Only for ablations: an "NF-ResNet without Scaled WS" (Brock et al., 2021a, Fig. 2),
    which is what simply deleting the normalization layers from a ResNet gives.
    """
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=bias)
    nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity=nonlinearity)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    return conv


class ScaledReLU(nn.Module):
    """``gamma * relu(x)``: ReLU rescaled to unit variance on N(0, 1) inputs (Brock et al., 2021a)."""

    def __init__(self, gamma: float = RELU_GAMMA) -> None:
        super().__init__()
        self.gamma = float(gamma)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x) * self.gamma

    def extra_repr(self) -> str:
        return f"gamma={self.gamma:.6f}"
