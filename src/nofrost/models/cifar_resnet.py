"""CIFAR-size pre-activation ResNets, with BN/IN/GN or normalizer-free (NF) blocks.

Topology: a 3x3 stride-1 stem convolution (no max-pool), four stages of pre-activation basic
blocks (He et al., 2016b, "Identity mappings in deep residual networks") with widths
``(w, 2w, 4w, 8w)`` and strides ``(1, 2, 2, 2)``, a final activation, global average pooling,
dropout and a linear classifier ``fc``. A block whose shape changes (a *transition* block)
takes its shortcut from the block's pre-activated input; otherwise the shortcut is the
identity. The transition shortcut is a strided 1x1 convolution in normalized nets (as in
PreActResNet-18 and timm's ``resnet*``) and 2x2 average pooling then a 1x1 convolution in NF
nets (as in timm's ``nf_resnet*``): the same difference as between the paper's ImageNet
ResNets and NF-ResNets, and the only one, so "the same network without normalization" is a
meaningful comparison.

Pre-activation is the ResNet form used by PreActResNet-18 in the adversarial-training
literature (Rice et al., 2020) and the one the NF-ResNets of Brock et al. (2021a) are built
from.

``norm="none"`` is the NF-ResNet of Brock, De & Smith (2021a), "Characterizing signal
propagation to close the performance gap in unnormalized ResNets" (ICLR 2021), initialized as
timm's ``nf_resnet*`` (the models NoFrost trained):

- residual blocks ``h_{i+1} = h_i + alpha * f_i(relu(h_i) * beta_i)`` where ``1 / beta_i`` is
  the analytically expected std of ``h_i``: Var(h_0) = 1 after the stem, Var(h_{i+1}) =
  Var(h_i) + alpha^2, reset to 1 + alpha^2 after a transition block (whose shortcut sees a
  unit-variance input). As in timm, this bookkeeping is what the branches would add at full
  strength; ``alpha = 0.2``;
- every convolution, the stem included, is a Scaled Weight Standardized convolution with a
  bias and ``gamma ~ 1.7139`` (1 / std of relu(z) for z ~ N(0, 1); see ``nf_layers``), so a
  residual branch maps unit-variance inputs to unit-variance outputs. timm folds the gamma
  into every convolution, the stem's too, although the image is not a ReLU output;
- the last convolution of each residual branch starts with gain 0 (timm:
  ``gain_init = 1 if skipinit else 0``), so every block is the identity (or its shortcut) at
  initialization and the branches grow in during training. ``skipinit=True`` instead keeps
  that gain at 1 and multiplies each branch by a learnable scalar ``skip_gain`` initialized
  to 0 (SkipInit, De & Smith, 2020; DeepMind's ``nfnets/resnet.py``);
- no normalization layer anywhere; the classifier reads ``gamma * relu(h_final)``, pooled,
  with ``fc`` initialized N(0, 0.01) (named ``fc`` so adaptive gradient clipping, Brock et
  al., 2021b, can skip it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial

import torch
from timm.layers import DropPath, ScaledStdConv2d
from torch import nn
from torch.utils.checkpoint import checkpoint

from nofrost.models.factory import register_model
from nofrost.models.nf_layers import RELU_GAMMA, ScaledReLU, he_conv, ws_conv
from nofrost.models.normalize import CIFAR10_MEAN, CIFAR10_STD, ImageClassifier
from nofrost.models.norms import list_norms, make_norm, norm_traits


@dataclass(frozen=True)
class CifarResNetConfig:
    """Architecture of a CIFAR-size pre-activation ResNet (see the module docstring).

    ``alpha``, ``skipinit`` and ``weight_standardization`` only matter for ``norm="none"``;
    ``weight_standardization=False`` is an ablation (plain He-initialized convolutions, no
    gamma: what deleting the normalizers alone gives) kept for signal-propagation studies.
    """

    depths: tuple[int, int, int, int]
    width: int = 64
    norm: str = "bn"
    in_chans: int = 3
    num_classes: int = 10
    dropout: float = 0.0
    drop_path: float = 0.0
    alpha: float = 0.2
    skipinit: bool = False
    weight_standardization: bool = True

    def __post_init__(self) -> None:
        if len(self.depths) != 4 or any(not isinstance(d, int) or d < 1 for d in self.depths):
            raise ValueError(f"depths must be four positive ints, got {self.depths!r}")
        if isinstance(self.width, bool) or not isinstance(self.width, int) or self.width < 1:
            raise ValueError(f"width (base channel count) must be a positive int, got {self.width!r}")
        if self.norm not in list_norms():
            raise ValueError(f"unknown norm {self.norm!r}; available: {', '.join(list_norms())}")
        if isinstance(self.in_chans, bool) or not isinstance(self.in_chans, int) or self.in_chans < 1:
            raise ValueError(f"in_chans must be a positive int, got {self.in_chans!r}")
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int) or self.num_classes < 1:
            raise ValueError(f"num_classes must be a positive int, got {self.num_classes!r}")
        for name in ("dropout", "drop_path"):
            value = getattr(self, name)
            if not 0.0 <= float(value) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value!r}")
        if not float(self.alpha) > 0.0:
            raise ValueError(f"alpha must be > 0, got {self.alpha!r}")

    @property
    def normalizer_free(self) -> bool:
        return self.norm == "none"

    @property
    def widths(self) -> tuple[int, int, int, int]:
        w = self.width
        return (w, 2 * w, 4 * w, 8 * w)


ConvLayer = Callable[[int, int, int, int], nn.Module]  # (in, out, kernel, stride) -> conv


class AvgDownsample(nn.Module):
    """timm's ``DownsampleAvg`` shortcut: 2x2 average pooling (when strided), then a 1x1 conv.

    Unlike a strided 1x1 convolution, which reads one pixel in four, every input pixel
    reaches the output (Brock et al., 2021a; timm ``nfnet.py``).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, conv: ConvLayer) -> None:
        super().__init__()
        self.pool = (
            nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False) if stride > 1 else nn.Identity()
        )
        self.conv = conv(in_channels, out_channels, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pool(x))


@dataclass(frozen=True)
class BlockLayers:
    """The layers a network kind builds its blocks from (timm style: passed in, not branched on).

    ``last_conv`` is the residual branch's last convolution (zero gain for NF-ResNets),
    ``shortcut(in, out, stride)`` the transition blocks' shortcut.
    """

    norm: Callable[[int], nn.Module]
    conv: ConvLayer
    last_conv: ConvLayer
    shortcut: Callable[[int, int, int], nn.Module]


def _plain_conv(cin: int, cout: int, k: int, stride: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False)


def block_layers(cfg: CifarResNetConfig) -> BlockLayers:
    """The layers of ``cfg``'s network kind (see the module docstring)."""
    norm = partial(make_norm, cfg.norm)
    if not cfg.normalizer_free:
        return BlockLayers(norm, _plain_conv, _plain_conv, _strided_shortcut)
    if cfg.weight_standardization:
        conv = partial(_ws, gain_init=1.0)
        # timm: gain_init = 1 if skipinit else 0, so each residual branch starts at zero.
        last_conv = partial(_ws, gain_init=1.0 if cfg.skipinit else 0.0)
    else:
        conv = last_conv = partial(_he, nonlinearity="relu")
    return BlockLayers(norm, conv, last_conv, partial(AvgDownsample, conv=conv))


def _ws(cin: int, cout: int, k: int, stride: int, *, gain_init: float) -> nn.Module:
    return ws_conv(cin, cout, k, stride, gamma=RELU_GAMMA, gain_init=gain_init)


def _he(cin: int, cout: int, k: int, stride: int, *, nonlinearity: str) -> nn.Module:
    return he_conv(cin, cout, k, stride, nonlinearity=nonlinearity)


def _strided_shortcut(cin: int, cout: int, stride: int) -> nn.Module:
    return _plain_conv(cin, cout, 1, stride)


class PreActBasicBlock(nn.Module):
    """Pre-activation basic block (He et al., 2016b); the NF-ResNet block with ``alpha``/``beta``.

    ``h + alpha * skip_gain * f(relu(norm1(h)) * beta)`` with
    ``f = last_conv . relu . norm2 . conv1``; normalized nets use ``alpha = beta = 1`` and no
    ``skip_gain``, NF nets an identity ``norm``. Transition blocks take their shortcut from the
    pre-activated input.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        layers: BlockLayers,
        *,
        alpha: float = 1.0,
        beta: float = 1.0,
        skipinit: bool = False,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.is_transition = stride != 1 or in_channels != out_channels
        self.expected_var_out = math.nan  # set by CifarResNet for NF nets

        self.norm1 = layers.norm(in_channels)
        self.act1 = nn.ReLU(inplace=False)  # the input is still needed by an identity shortcut
        self.conv1 = layers.conv(in_channels, out_channels, 3, stride)
        self.norm2 = layers.norm(out_channels)
        self.act2 = nn.ReLU(inplace=True)
        self.conv2 = layers.last_conv(out_channels, out_channels, 3, 1)
        self.shortcut = layers.shortcut(in_channels, out_channels, stride) if self.is_transition else None
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.skip_gain = nn.Parameter(torch.zeros(())) if skipinit else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.norm1(x))
        if self.beta != 1.0:
            out = out * self.beta
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(self.act2(self.norm2(out)))
        out = self.drop_path(out)
        if self.skip_gain is not None:
            out = out * (self.skip_gain * self.alpha)
        elif self.alpha != 1.0:
            out = out * self.alpha
        return out + shortcut

    def extra_repr(self) -> str:
        if math.isnan(self.expected_var_out):
            return ""
        return f"alpha={self.alpha}, beta={self.beta:.4f}, expected_var_out={self.expected_var_out:.4f}"


class CifarResNet(nn.Module):
    """CIFAR pre-activation ResNet; NF-ResNet (Brock et al., 2021a) for ``norm="none"``.

    ``forward`` takes *normalized* images; wrap it in ``ImageClassifier`` (as the
    registered factories do) to take [0, 1] images.
    """

    def __init__(self, cfg: CifarResNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.num_classes = cfg.num_classes
        nf = cfg.normalizer_free
        layers = block_layers(cfg)
        if nf and cfg.weight_standardization:
            # timm builds the stem with the same Scaled-WS conv as the blocks: gamma 1.7139, bias.
            self.stem = ws_conv(cfg.in_chans, cfg.width, 3, 1, gamma=RELU_GAMMA)
        elif nf:
            self.stem = he_conv(cfg.in_chans, cfg.width, 3, 1, bias=False, nonlinearity="linear")
        else:
            self.stem = _plain_conv(cfg.in_chans, cfg.width, 3, 1)

        total = sum(cfg.depths)
        expected_var = 1.0  # Var(h_0), as timm and Brock et al. (2021a) count it
        index = 0
        in_ch = cfg.width
        stages = []
        for stage, (depth, out_ch) in enumerate(zip(cfg.depths, cfg.widths)):
            blocks = []
            for i in range(depth):
                stride = 2 if (stage > 0 and i == 0) else 1
                block = PreActBasicBlock(
                    in_ch,
                    out_ch,
                    stride,
                    layers,
                    alpha=cfg.alpha if nf else 1.0,
                    beta=1.0 / math.sqrt(expected_var) if nf else 1.0,
                    skipinit=nf and cfg.skipinit,
                    # linearly increasing stochastic depth (Huang et al., 2016)
                    drop_path=cfg.drop_path * index / max(total - 1, 1),
                )
                if block.is_transition:
                    expected_var = 1.0  # the shortcut conv of a unit-variance input
                expected_var += cfg.alpha**2
                if nf:
                    block.expected_var_out = expected_var
                blocks.append(block)
                in_ch = out_ch
                index += 1
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.num_features = in_ch

        # Per-image norms (IN, GN) right before global average pooling would erase exactly what
        # the pooling reads (each channel's per-image mean): the network could only output a
        # constant. They end with the activation alone; BN keeps the usual PreAct final BN.
        per_image = norm_traits(cfg.norm).per_image
        self.final_norm = nn.Identity() if per_image else make_norm(cfg.norm, in_ch)
        self.final_act = ScaledReLU(RELU_GAMMA) if nf else nn.ReLU(inplace=True)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity()
        self.fc = nn.Linear(in_ch, cfg.num_classes)
        self.grad_checkpointing = False
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if type(m) is nn.Conv2d and not self.cfg.normalizer_free:
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, ScaledStdConv2d):
                # timm's NormFreeNet init (standardization makes the scale moot, not the zero bias)
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="linear")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        if self.cfg.normalizer_free:
            # Classifier N(0, 0.01) as in the reference NF-ResNet (and timm's NF nets).
            nn.init.normal_(self.fc.weight, 0.0, 0.01)
            nn.init.zeros_(self.fc.bias)
        # Normalized nets keep PyTorch's default Linear init, as torchvision's ResNets and the
        # PreAct ResNet-18 of the adversarial-training literature do: with per-image norms the
        # pooled features barely differ between images at initialization, and a N(0, 0.01)
        # classifier passes back too little gradient (docs/methods.md, SAT w/ IN).

    def get_classifier(self) -> nn.Linear:
        """The final linear layer (timm's API; e.g. for excluding it from gradient clipping)."""
        return self.fc

    def blocks(self) -> Iterator[PreActBasicBlock]:
        """The residual blocks, in forward order."""
        for stage in self.stages:
            yield from stage  # type: ignore[misc]

    def expected_variances(self) -> list[float]:
        """Analytic Var(h_{i+1}) after each block (NF nets; NaN for normalized ones)."""
        return [b.expected_var_out for b in self.blocks()]

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each block's activations in the backward pass instead of storing them.

        timm's method name, so ``ImageClassifier`` treats CIFAR and timm nets alike. Trades
        about one extra forward per backward for activation memory that no longer grows with
        depth.
        """
        self.grad_checkpointing = bool(enable)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        if not (self.grad_checkpointing and torch.is_grad_enabled()):
            return self.stages(x)
        for block in self.blocks():
            x = checkpoint(block, x, use_reentrant=False)
        return x

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.final_act(self.final_norm(x))).flatten(1)
        return self.fc(self.dropout(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _cifar_model(
    depths: tuple[int, int, int, int],
    num_classes: int,
    *,
    norm: str,
    in_chans: int,
    mean: Sequence[float],
    std: Sequence[float],
    width: int,
    dropout: float,
    drop_path: float,
    alpha: float,
    skipinit: bool,
) -> ImageClassifier:
    cfg = CifarResNetConfig(
        depths=depths,
        width=width,
        norm=norm,
        in_chans=in_chans,
        num_classes=num_classes,
        dropout=dropout,
        drop_path=drop_path,
        alpha=alpha,
        skipinit=skipinit,
    )
    if len(mean) != in_chans or len(std) != in_chans:
        raise ValueError(f"mean and std need {in_chans} values (one per input channel), got {list(mean)} and {list(std)}")
    return ImageClassifier(CifarResNet(cfg), mean, std)


@register_model("cifar_resnet10")
def cifar_resnet10(
    num_classes: int,
    *,
    norm: str = "bn",
    in_chans: int = 3,
    mean: Sequence[float] = CIFAR10_MEAN,
    std: Sequence[float] = CIFAR10_STD,
    width: int = 16,
    dropout: float = 0.0,
    drop_path: float = 0.0,
    alpha: float = 0.2,
    skipinit: bool = False,
) -> ImageClassifier:
    """Pre-activation ResNet-10 for 32x32 images: one basic block per stage, base width 16.

    Small enough to train on a CPU. ``norm`` in {"bn", "in", "gn", "none"}; "none" is the
    NF-ResNet of Brock et al. (2021a) (``alpha``, ``skipinit`` apply only to it).
    """
    return _cifar_model(
        (1, 1, 1, 1), num_classes, norm=norm, in_chans=in_chans, mean=mean, std=std, width=width,
        dropout=dropout, drop_path=drop_path, alpha=alpha, skipinit=skipinit,
    )


@register_model("cifar_resnet18")
def cifar_resnet18(
    num_classes: int,
    *,
    norm: str = "bn",
    in_chans: int = 3,
    mean: Sequence[float] = CIFAR10_MEAN,
    std: Sequence[float] = CIFAR10_STD,
    width: int = 64,
    dropout: float = 0.0,
    drop_path: float = 0.0,
    alpha: float = 0.2,
    skipinit: bool = False,
) -> ImageClassifier:
    """Pre-activation ResNet-18 for 32x32 images (He et al., 2016b): blocks (2, 2, 2, 2), width 64.

    ``norm`` in {"bn", "in", "gn", "none"}; "none" is the NF-ResNet of Brock et al. (2021a)
    (``alpha``, ``skipinit`` apply only to it).
    """
    return _cifar_model(
        (2, 2, 2, 2), num_classes, norm=norm, in_chans=in_chans, mean=mean, std=std, width=width,
        dropout=dropout, drop_path=drop_path, alpha=alpha, skipinit=skipinit,
    )
