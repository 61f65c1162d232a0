"""Normalization layers behind one small registry: ``make_norm(kind, channels)``.

Every network in this package asks ``make_norm`` (or ``norm_layer(kind)`` for timm's
``norm_layer=`` argument) for its normalization layers, so a new kind (e.g. the mixture BN
"mbn" of Xie & Yuille, 2020, "Intriguing properties of adversarial training at scale") is
one new module that decorates its factory with ``register_norm("mbn")``.

Kinds registered here:

- ``"bn"``: batch normalization (Ioffe & Szegedy, 2015).
- ``"in"``: instance normalization with affine parameters and no running statistics
  (Ulyanov et al., 2016, "Instance normalization: the missing ingredient for fast
  stylization"); the "SAT w/ IN" baseline of NoFrost Table 3. It raises a clear error on
  1x1 feature maps, where per-instance statistics are undefined.
- ``"gn"``: group normalization (Wu & He, 2018, "Group normalization") with 32 groups,
  or, when the channel count is not divisible by 32, the largest divisor of it below 32
  (e.g. 16 channels -> 16 groups of one channel, which equals instance norm there).
- ``"none"``: ``nn.Identity``. Removing the normalizer alone is *not* a normalizer-free
  network: the CIFAR factories build the NF-ResNet of Brock et al. (2021a) for
  ``norm="none"`` (Scaled WS convolutions, alpha/beta scaling, gamma-scaled ReLU).
- ``"mbn"``: mixture BN (Xie & Yuille, 2020), two batch norms BN_c / BN_a per layer with
  explicit routing; defined in ``nofrost.models.mbn`` (imported at the end of this module).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Optional, Protocol

import torch
from torch import nn

from nofrost.registry import Registry


class NormFactory(Protocol):
    def __call__(
        self, num_channels: int, device: Optional[torch.device] = None, dtype: Optional[torch.dtype] = None
    ) -> nn.Module: ...


NORM_LAYERS: Registry[NormFactory] = Registry("normalization layer")


@dataclass(frozen=True)
class NormTraits:
    """What the rest of the code needs to know about a kind of normalization layer.

    ``batch_stats``: it computes statistics across the examples of a batch (batch norm), so an
    image's output depends on the others: clean and adversarial images must not share a pass.
    ``per_image``: it normalizes each image on its own (IN, GN), so it must not sit right before
    global pooling (it would erase the per-image channel means the pooling reads).
    ``routed``: each forward uses one of several parameter sets (mixture BN), so DDP must expect
    unused parameters.
    """

    batch_stats: bool = False
    per_image: bool = False
    routed: bool = False


NORM_TRAITS: dict[str, NormTraits] = {}
NORM_DISPLAY: dict[str, str] = {}


def register_norm(
    name: str, *, display: str | None = None, batch_stats: bool = False, per_image: bool = False, routed: bool = False
) -> Callable[[NormFactory], NormFactory]:
    """Decorator registering ``factory(num_channels, device=None, dtype=None) -> nn.Module``
    with the :class:`NormTraits` of the layers it makes and its ``display`` name in tables
    ("BN", "IN", "NF"; default: the name in capitals), as in the paper's "SAT w/ IN"."""

    def decorator(factory: NormFactory) -> NormFactory:
        NORM_LAYERS.register(name)(factory)
        NORM_TRAITS[name] = NormTraits(batch_stats=batch_stats, per_image=per_image, routed=routed)
        NORM_DISPLAY[name] = display or name.upper()
        return factory

    return decorator


def norm_traits(kind: str) -> NormTraits:
    """The traits of registered norm ``kind`` (a ValueError listing the kinds if unknown)."""
    NORM_LAYERS.get(kind)
    return NORM_TRAITS[kind]


def norm_display(kind: str) -> str:
    """How tables name registered norm ``kind``: "BN", "IN", "GN", "NF", "MBN"."""
    NORM_LAYERS.get(kind)
    return NORM_DISPLAY[kind]


def list_norms() -> list[str]:
    return NORM_LAYERS.names()


def norm_layer(kind: str) -> NormFactory:
    """The factory for ``kind``, callable as ``factory(num_channels, device=..., dtype=...)``.

    Suitable for timm's ``norm_layer=`` argument.
    """
    return NORM_LAYERS.get(kind)


def make_norm(kind: str, channels: int) -> nn.Module:
    """A normalization layer of kind ``kind`` over ``channels`` feature channels."""
    if channels <= 0:
        raise ValueError(f"a normalization layer needs channels > 0, got {channels}")
    return norm_layer(kind)(channels)


class FeatureMapTooSmallError(ValueError):
    """A layer got a feature map too small for what it computes."""


class InstanceNorm2d(nn.InstanceNorm2d):
    """Affine instance normalization (Ulyanov et al., 2016) that refuses 1x1 feature maps.

    With a single spatial element the per-instance variance is zero and the output would be
    silently constant (PyTorch raises a cryptic error only in training mode); here it is a
    ``FeatureMapTooSmallError`` (a ``ValueError``) naming the layer and its input size.
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = True,
        track_running_stats: bool = False,
        device: Optional[torch.device] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__(
            num_features,
            eps=eps,
            momentum=momentum,
            affine=affine,
            track_running_stats=track_running_stats,
            device=device,
            dtype=dtype,
        )
        self.layer_name = ""  # filled in by ImageClassifier with the module's full name

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if input.ndim >= 3 and input.shape[-1] * input.shape[-2] == 1:
            name = self.layer_name or "(unnamed)"
            raise FeatureMapTooSmallError(
                f"instance norm layer {name!r} got a feature map of size "
                f"{tuple(input.shape[-2:])} (input shape {tuple(input.shape)}): instance "
                f"normalization needs more than one spatial element per channel. Use larger "
                f"input images (CIFAR models downsample 8x, so 32x32 is fine; ImageNet models "
                f"downsample 32x, so use at least 64x64) or another norm ('bn', 'gn', 'none')."
            )
        return super().forward(input)


def group_count(channels: int, max_groups: int = 32) -> int:
    """The largest divisor of ``channels`` that is at most ``max_groups``."""
    for groups in range(min(max_groups, channels), 0, -1):
        if channels % groups == 0:
            return groups
    return 1


class GroupNorm(nn.GroupNorm):
    """Group normalization (Wu & He, 2018) with 32 groups, or fewer when not divisible.

    The group count is ``group_count(num_channels)``: the largest divisor of the channel
    count that is at most 32.
    """

    def __init__(
        self,
        num_channels: int,
        max_groups: int = 32,
        eps: float = 1e-5,
        affine: bool = True,
        device: Optional[torch.device] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__(
            group_count(num_channels, max_groups), num_channels, eps=eps, affine=affine, device=device, dtype=dtype
        )


@register_norm("bn", display="BN", batch_stats=True)
def _batch_norm(num_channels: int, device=None, dtype=None) -> nn.Module:
    """Batch normalization (Ioffe & Szegedy, 2015)."""
    return nn.BatchNorm2d(num_channels, device=device, dtype=dtype)


@register_norm("in", display="IN", per_image=True)
def _instance_norm(num_channels: int, device=None, dtype=None) -> nn.Module:
    """Affine instance normalization (Ulyanov et al., 2016), no running statistics."""
    return InstanceNorm2d(num_channels, device=device, dtype=dtype)


@register_norm("gn", display="GN", per_image=True)
def _group_norm(num_channels: int, device=None, dtype=None) -> nn.Module:
    """Group normalization (Wu & He, 2018), up to 32 groups."""
    return GroupNorm(num_channels, device=device, dtype=dtype)


@register_norm("none", display="NF")
def _no_norm(num_channels: int, device=None, dtype=None) -> nn.Module:
    """No normalization (identity)."""
    return nn.Identity()


_NORM_TYPES: tuple[type, ...] = (
    nn.modules.batchnorm._NormBase,  # BatchNorm*, SyncBatchNorm, InstanceNorm* (and subclasses)
    nn.GroupNorm,
    nn.LayerNorm,
    nn.LocalResponseNorm,
    nn.CrossMapLRN2d,
) + ((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ())


# Catches classes that do not subclass torch's (e.g. FrozenBatchNorm2d, custom mixture BNs).
_NORM_NAME = re.compile(r"(batch|group|layer|instance|rms|response|mixture|dual)_?norm")


def is_normalization_layer(module: nn.Module) -> bool:
    """True for any feature-normalization module (BN/IN/GN/LN/LRN/RMS, timm's variants).

    The input ``Normalize`` (a fixed per-channel affine map) is not a normalization layer.
    """
    from nofrost.models.normalize import Normalize

    if isinstance(module, Normalize):
        return False
    if isinstance(module, _NORM_TYPES):
        return True
    return _NORM_NAME.search(type(module).__name__.lower()) is not None


def layer_traits(module: nn.Module) -> NormTraits:
    """The :class:`NormTraits` of one module: its class's ``norm_traits`` if it declares them
    (as a custom norm should), those of torch's batch norms (SyncBN and ghost BN included) and
    per-image norms, and no traits for anything else."""
    declared = getattr(type(module), "norm_traits", None)
    if isinstance(declared, NormTraits):
        return declared
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return NormTraits(batch_stats=True)
    if isinstance(module, (nn.modules.instancenorm._InstanceNorm, nn.GroupNorm, nn.LayerNorm)):
        return NormTraits(per_image=True)
    return NormTraits()


def mixes_examples(model: nn.Module) -> bool:
    """True if some layer computes statistics across the batch (``batch_stats``).

    Such a model's output for one image depends on the others in its batch, so clean and
    adversarial examples must not share a forward pass; per-image norms (IN, GN, LN) and
    normalizer-free models are safe to batch together.
    """
    return any(layer_traits(m).batch_stats for m in model.modules())


def has_routed_layers(model: nn.Module) -> bool:
    """True if some layer picks one of several parameter sets per forward (``routed``)."""
    return any(layer_traits(m).routed for m in model.modules())


def find_normalization_layers(model: nn.Module) -> list[str]:
    """Names of all normalization modules in ``model`` (empty for a normalizer-free net)."""
    return [name for name, m in model.named_modules() if is_normalization_layer(m)]


# Registers "mbn" (mixture BN, Xie & Yuille 2020); imported last because it registers itself here.
from nofrost.models import mbn as _mbn  # noqa: E402,F401
