"""ImageNet models of the NoFrost paper, built by timm with timm's own state-dict keys.

NoFrost (Wang et al., ICML 2022, "Removing batch normalization boosts adversarial training")
trains ResNet-26/50 (He et al., 2016) with BN, and NF-ResNet-26/50 (Brock et al., 2021a),
all created with ``timm.create_model(name, pretrained=False, ...)``; keeping timm's keys
under the ``net.`` prefix means the official release checkpoints load unchanged.

Never downloads anything: ``pretrained`` is always False.
"""

from __future__ import annotations

from collections.abc import Sequence

import timm
from torch import nn

from nofrost.models.factory import register_model
from nofrost.models.normalize import IMAGENET_MEAN, IMAGENET_STD, ImageClassifier
from nofrost.models.norms import list_norms, norm_layer


def _check_common(name: str, in_chans: int, mean: Sequence[float], std: Sequence[float], dropout: float, drop_path: float) -> None:
    if isinstance(in_chans, bool) or not isinstance(in_chans, int) or in_chans < 1:
        raise ValueError(f"{name}: in_chans must be a positive int, got {in_chans!r}")
    if len(mean) != in_chans or len(std) != in_chans:
        raise ValueError(f"{name}: mean and std need {in_chans} values (one per input channel), got {list(mean)} and {list(std)}")
    for label, value in (("dropout", dropout), ("drop_path", drop_path)):
        if not 0.0 <= float(value) < 1.0:
            raise ValueError(f"{name}: {label} must be in [0, 1), got {value!r}")


def _timm_resnet(
    name: str, num_classes: int, norm: str, in_chans: int, mean: Sequence[float], std: Sequence[float],
    dropout: float, drop_path: float,
) -> ImageClassifier:
    """timm ResNet (He et al., 2016) with the normalization layer chosen by ``norm``."""
    _check_common(name, in_chans, mean, std, dropout, drop_path)
    allowed = [n for n in list_norms() if n != "none"]
    if norm not in allowed:
        hint = f"; for a normalizer-free network use 'nf_{name}'" if norm == "none" else ""
        raise ValueError(f"{name}: unknown norm {norm!r}; available: {', '.join(allowed)}{hint}")
    layer = nn.BatchNorm2d if norm == "bn" else norm_layer(norm)
    net = timm.create_model(
        name,
        pretrained=False,
        num_classes=num_classes,
        in_chans=in_chans,
        drop_rate=float(dropout),
        drop_path_rate=float(drop_path),
        norm_layer=layer,
    )
    return ImageClassifier(net, mean, std)


def _timm_nf_resnet(
    name: str, num_classes: int, in_chans: int, mean: Sequence[float], std: Sequence[float],
    dropout: float, drop_path: float,
) -> ImageClassifier:
    """timm NF-ResNet (Brock et al., 2021a): Scaled-WS convs, alpha = 0.2, no normalization."""
    _check_common(name, in_chans, mean, std, dropout, drop_path)
    net = timm.create_model(
        name,
        pretrained=False,
        num_classes=num_classes,
        in_chans=in_chans,
        drop_rate=float(dropout),
        drop_path_rate=float(drop_path),
    )
    return ImageClassifier(net, mean, std)


def _register_resnet(name: str, blocks: str) -> None:
    @register_model(name)
    def factory(
        num_classes: int,
        *,
        norm: str = "bn",
        in_chans: int = 3,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        dropout: float = 0.0,
        drop_path: float = 0.0,
    ) -> ImageClassifier:
        return _timm_resnet(name, num_classes, norm, in_chans, mean, std, dropout, drop_path)

    factory.__doc__ = f"timm ``{name}`` (bottleneck blocks {blocks}); ``norm`` in {{'bn', 'in', 'gn'}}."


def _register_nf_resnet(name: str, depth: int) -> None:
    @register_model(name)
    def factory(
        num_classes: int,
        *,
        in_chans: int = 3,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        dropout: float = 0.0,
        drop_path: float = 0.0,
    ) -> ImageClassifier:
        return _timm_nf_resnet(name, num_classes, in_chans, mean, std, dropout, drop_path)

    factory.__doc__ = f"timm ``{name}``: NF-ResNet-{depth} (Brock et al., 2021a), the NoFrost ResNet-{depth} backbone."


_register_resnet("resnet26", "(2, 2, 2, 2)")
_register_resnet("resnet50", "(3, 4, 6, 3)")
_register_nf_resnet("nf_resnet26", 26)
_register_nf_resnet("nf_resnet50", 50)
