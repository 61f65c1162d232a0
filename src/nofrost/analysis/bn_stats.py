"""Normalization statistics of clean and adversarial images (the NoFrost paper's Figure 1).

The paper's argument (Sec. 2.2): the features of clean and adversarial images follow different
distributions, which one batch norm cannot both estimate. Two measurements show it:

* :func:`running_stats`: a BN layer's running mean and variance per channel. For two models,
  one trained on clean images and one on adversarial ones, their scatter is Figure 1 (the
  paper: the 15th BN layer of two ImageNet ResNet26s).
* :func:`clean_vs_adversarial`: for one model, the per-channel mean and variance of what
  enters each measured position, on clean images and on adversarial ones (PGD against the
  model's own prediction), pooled over the examples and pixels, next to the running
  statistics where the position is a BN layer; and per position one number, the distance
  between the two distributions (:func:`channel_distance`).

Positions: in a model with batch norm, every BN layer (its input), in definition order (the
order of ``model.named_modules()``; "layer 15" is the 15th); in a normalizer-free one, where
BN would have been, the input of each residual block's first weight-standardised conv (the
``conv1`` of timm's ``NormFreeBlock`` and of nofrost's CIFAR blocks). The two kinds can then
be drawn on one axis, relative depth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from timm.layers import ScaledStdConv2d
from torch import Tensor, nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from nofrost.attacks._common import attack_mode, check_eps
from nofrost.data import make_loader, stratified_subset
from nofrost.data.loader import derive_seed

__all__ = ["LayerStats", "NormStats", "bn_layers", "channel_distance", "clean_vs_adversarial",
           "measured_positions", "running_stats"]  # fmt: skip


def bn_layers(model: nn.Module) -> list[tuple[str, nn.modules.batchnorm._BatchNorm]]:
    """The batch-norm layers of ``model`` with their names, in definition order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def measured_positions(model: nn.Module) -> tuple[str, list[tuple[str, nn.Module]]]:
    """``("bn", BN layers)`` for a model with batch norm, ``("nf", first weight-standardised
    conv of each residual block)`` for a normalizer-free one; the input of each is measured."""
    layers = bn_layers(model)
    if layers:
        return "bn", layers  # type: ignore[return-value]
    convs = [(f"{name}.conv1" if name else "conv1", m.conv1) for name, m in model.named_modules()
             if isinstance(getattr(m, "conv1", None), ScaledStdConv2d)]
    if not convs:
        raise ValueError("the model has neither batch-norm layers nor normalizer-free residual blocks "
                         "(a `conv1` that is a weight-standardised conv) to measure")
    return "nf", convs


def _layer(model: nn.Module, layer: int | str) -> tuple[str, nn.modules.batchnorm._BatchNorm]:
    layers = bn_layers(model)
    if not layers:
        raise ValueError("the model has no batch-norm layer, so no running statistics (a normalizer-free "
                         "model keeps none)")
    if isinstance(layer, str) and not layer.isdigit():
        named = dict(layers)
        if layer not in named:
            raise ValueError(f"no batch-norm layer named {layer!r}; the model's: {', '.join(named)}")
        return layer, named[layer]
    index = int(layer)
    if not 1 <= index <= len(layers):
        raise ValueError(f"layer {index} does not exist: the model has {len(layers)} batch-norm layers (1-{len(layers)})")
    return layers[index - 1]


def running_stats(model: nn.Module, layer: int | str) -> tuple[str, Tensor, Tensor]:
    """``(name, running mean, running variance)`` per channel of a BN layer, given by its
    1-based position among the model's BN layers (definition order) or by its name."""
    name, bn = _layer(model, layer)
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError(f"batch-norm layer {name!r} keeps no running statistics (track_running_stats=False)")
    return name, bn.running_mean.detach().float().cpu(), bn.running_var.detach().float().cpu()


def channel_distance(mean_a: Tensor, var_a: Tensor, mean_b: Tensor, var_b: Tensor, eps: float = 1e-5) -> float:
    """The mean over channels of the symmetrised KL divergence between the Gaussians
    N(mean_a, var_a) and N(mean_b, var_b) of each channel: ½ (KL(a‖b) + KL(b‖a)) =
    ¼ (va/vb + vb/va − 2) + ¼ (ma − mb)² (1/va + 1/vb).

    Why this distance: it is what BN is sensitive to, a shift of the mean or a change of the
    spread *relative to the spread*, and it is invariant to a per-channel rescaling of the
    features, so a BN network and a normalizer-free one (whose activations have other scales)
    can be compared on one axis. ``eps`` (BN's own) keeps dead channels finite."""
    va, vb = var_a.double() + eps, var_b.double() + eps
    gap = (mean_a.double() - mean_b.double()) ** 2
    per_channel = 0.25 * (va / vb + vb / va - 2) + 0.25 * gap * (1 / va + 1 / vb)
    return float(per_channel.mean())


@dataclass
class LayerStats:
    """Per-channel statistics of what enters one position, on clean and adversarial images."""

    name: str
    clean_mean: Tensor
    clean_var: Tensor
    adv_mean: Tensor
    adv_var: Tensor
    running_mean: Tensor | None = None
    running_var: Tensor | None = None

    @property
    def channels(self) -> int:
        return len(self.clean_mean)

    @property
    def distance(self) -> float:
        """:func:`channel_distance` between the clean and adversarial statistics."""
        return channel_distance(self.clean_mean, self.clean_var, self.adv_mean, self.adv_var)


@dataclass
class NormStats:
    """:func:`clean_vs_adversarial` of one model: ``kind`` is ``"bn"`` or ``"nf"``."""

    model: str
    kind: str
    n: int
    eps: float
    norm: str
    attack: str
    layers: list[LayerStats] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A summary per position (the per-channel arrays are in :meth:`arrays`)."""
        return {
            "model": self.model, "kind": self.kind, "n": self.n, "eps": self.eps, "norm": self.norm,
            "attack": self.attack,
            "layers": [{"name": s.name, "channels": s.channels, "distance": s.distance,
                        "clean_mean": float(s.clean_mean.mean()), "adv_mean": float(s.adv_mean.mean()),
                        "clean_var": float(s.clean_var.mean()), "adv_var": float(s.adv_var.mean())}
                       for s in self.layers],
        }  # fmt: skip

    def arrays(self) -> dict[str, Any]:
        """Every per-channel array, as ``"<position>/<statistic>"`` → NumPy array."""
        out = {}
        for s in self.layers:
            for stat in ("clean_mean", "clean_var", "adv_mean", "adv_var", "running_mean", "running_var"):
                value = getattr(s, stat)
                if value is not None:
                    out[f"{s.name}/{stat}"] = value.numpy()
        return out


class _Moments:
    """Per-channel sums over (examples, pixels) of x and x², in float64."""

    def __init__(self) -> None:
        self.count = 0
        self.sum: Tensor | None = None
        self.sum_sq: Tensor | None = None

    def add(self, x: Tensor) -> None:
        x = x.detach().double().transpose(0, 1).flatten(1)  # (C, N·H·W)
        s, sq = x.sum(dim=1).cpu(), (x * x).sum(dim=1).cpu()
        self.sum = s if self.sum is None else self.sum + s
        self.sum_sq = sq if self.sum_sq is None else self.sum_sq + sq
        self.count += x.shape[1]

    def mean_var(self) -> tuple[Tensor, Tensor]:
        mean = self.sum / self.count
        return mean.float(), (self.sum_sq / self.count - mean * mean).clamp_min(0).float()


def clean_vs_adversarial(
    model: nn.Module,
    dataset: Dataset,
    *,
    n: int | None = 512,
    eps: float = 8 / 255,
    norm: str = "linf",
    steps: int = 10,
    batch_size: int = 128,
    device: str | torch.device = "cpu",
    seed: int = 0,
    model_name: str = "",
    progress: bool = False,
) -> NormStats:
    """Statistics of every measured position on ``n`` (class-stratified) clean images and their
    adversarial versions (PGD, ``steps`` steps at ``eps`` in ``norm``, against the model's own
    prediction so that every image is attacked). The model runs in eval mode; its state and
    mode are left as they were. Variances are the biased (population) ones, pooled over all
    examples and pixels."""
    from nofrost.evaluate.metrics import MetricBatch

    if n is not None and n < len(dataset):
        dataset = stratified_subset(dataset, n, seed=seed)
    eps = check_eps(eps, norm=norm)
    device = torch.device(device)
    model = model.to(device)
    kind, positions = measured_positions(model)
    moments = {name: (_Moments(), _Moments()) for name, _ in positions}
    which = {"slot": 0}  # 0: clean pass, 1: adversarial pass

    def hook(name: str):
        def record(_module: nn.Module, inputs: tuple[Tensor, ...]) -> None:
            moments[name][which["slot"]].add(inputs[0])
        return record

    count = 0
    handles: list[Any] = []
    loader = make_loader(dataset, batch_size, shuffle=False, augment=False, device=device)
    with attack_mode(model):
        for batch_index, (x, y) in enumerate(tqdm(loader, disable=not progress, desc="BN statistics", unit="batch")):
            with torch.no_grad():
                logits = model(x)
            inputs = MetricBatch(model, model, x, y, logits, eps, norm, derive_seed(seed, batch_index))
            x_adv = inputs.adversarial("pgd", steps=steps)
            handles = [module.register_forward_pre_hook(hook(name)) for name, module in positions]
            try:
                with torch.no_grad():
                    which["slot"] = 0
                    model(x)
                    which["slot"] = 1
                    model(x_adv)
            finally:
                for handle in handles:
                    handle.remove()
            count += len(x)

    layers = []
    for name, module in positions:
        clean, adv = moments[name]
        if clean.count == 0:
            continue  # a route this model did not take (e.g. the unused path of a mixture BN)
        running = (module.running_mean, module.running_var) if kind == "bn" else (None, None)
        layers.append(LayerStats(
            name, *clean.mean_var(), *adv.mean_var(),
            running_mean=None if running[0] is None else running[0].detach().float().cpu(),
            running_var=None if running[1] is None else running[1].detach().float().cpu(),
        ))  # fmt: skip
    return NormStats(model_name, kind, count, eps, norm, f"pgd:steps={steps}", layers)


def relative_depth(count: int) -> list[float]:
    """Positions 1…count as fractions of the depth (1/count … 1), the shared axis of BN and NF models."""
    return [(i + 1) / count for i in range(count)] if count else []
