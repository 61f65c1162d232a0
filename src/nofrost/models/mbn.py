"""Mixture batch normalization (MBN) and test-time γ interpolation between its two paths.

MBN: C. Xie, A. Yuille, "Intriguing properties of adversarial training at scale", ICLR 2020.
Every normalization layer holds two batch norms, BN_c for clean and BN_a for adversarial
images; in MBNAT training, clean images are routed through BN_c and adversarial ones (their
generation included) through BN_a, so neither has to model the mixture of the two
distributions (NoFrost paper, Wang et al., ICML 2022, Sec. 2.2). Registered as norm ``"mbn"``,
so ``create_model("cifar_resnet18", 10, norm="mbn")`` and the timm ``resnet26/50`` build
with it, and ``load_model`` rebuilds it from ``model.json``.

Routing is explicit: ``with mbn_route(model, "clean"): ...`` / ``"adv"``. Outside any
``mbn_route`` block a layer uses BN_a (γ = 1, the choice of Xie & Yuille for robustness), so
a loaded MBNAT model evaluates as its adversarial path; take another operating point with
:func:`interpolated`.

Test-time interpolation (NoFrost paper, Appendix A, after Merchant et al. 2020), with
γ ∈ [0, 1]; γ = 0 is exactly the BN_c network and γ = 1 exactly the BN_a network in all modes:

* ``"logits"`` (default): z = (1 − γ)·z_c + γ·z_a, with z_c (z_a) the logits of the network
  using BN_c (BN_a) in every layer;
* ``"all"``: every MBN layer outputs (1 − γ)·BN_c(f) + γ·BN_a(f);
* ``"random"``: a fixed random p% of the MBN layers (chosen by ``seed``) mix their outputs
  that way, while the other layers "keep the two parallel outputs": the network runs a clean
  stream (BN_c) and an adversarial stream (BN_a) side by side, a mixing layer merges them
  into (1 − γ)·BN_c(f_c) + γ·BN_a(f_a) fed to both, and the logits are interpolated as in
  "logits". So p = 0 is "logits" and p = 100 is "all". The two streams are run as one
  doubled batch, which is exact because every other layer acts per example (in eval mode).

The layer's affine parameters are stored as one vector of length 2C, ``weight = [γ_c; γ_a]``
(likewise ``bias``), so initializers that zero ``norm.weight`` (timm's ``zero_init_last``)
act on both paths, and ``optim.weight_decay_on: weights`` exempts both as norm affines.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nofrost.models.norms import NormTraits, register_norm

ROUTES = ("clean", "adv")
INTERPOLATION_MODES = ("logits", "all", "random")
_LAYER_MODES = ("clean", "adv", "mix", "dual")


class MixtureBatchNorm2d(nn.Module):
    """Two batch norms, BN_c and BN_a, over the same channels; ``mode`` says which one runs.

    ``mode``: "clean" (BN_c), "adv" (BN_a, the default), "mix" ((1 − γ)·BN_c + γ·BN_a of the
    same input) or "dual" (the batch is [clean stream; adversarial stream], each half through
    its BN; with ``merge`` the halves become (1 − γ)·BN_c(first) + γ·BN_a(second), twice).
    Set it with :func:`mbn_route` or :func:`interpolated`, not by hand.
    """

    norm_traits = NormTraits(batch_stats=True, routed=True)

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        device: Optional[torch.device] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        if num_features <= 0:
            raise ValueError(f"MixtureBatchNorm2d needs num_features > 0, got {num_features}")
        factory = {"device": device, "dtype": dtype}
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.weight = nn.Parameter(torch.ones(2 * num_features, **factory))  # [γ_c; γ_a]
        self.bias = nn.Parameter(torch.zeros(2 * num_features, **factory))  # [β_c; β_a]
        for branch in ("c", "a"):
            self.register_buffer(f"running_mean_{branch}", torch.zeros(num_features, **factory))
            self.register_buffer(f"running_var_{branch}", torch.ones(num_features, **factory))
            self.register_buffer(
                f"num_batches_tracked_{branch}", torch.tensor(0, dtype=torch.long, device=device)
            )
        self.mode = "adv"
        self.gamma = 1.0
        self.merge = False

    def branch(self, x: Tensor, which: str) -> Tensor:
        """BN_c(x) (``which="c"``) or BN_a(x) (``"a"``): batch statistics in training mode
        (updating that branch's running statistics only), running statistics in eval mode."""
        c = self.num_features
        offset = 0 if which == "c" else c
        if self.training:
            getattr(self, f"num_batches_tracked_{which}").add_(1)
        return F.batch_norm(
            x,
            getattr(self, f"running_mean_{which}"),
            getattr(self, f"running_var_{which}"),
            self.weight[offset : offset + c],
            self.bias[offset : offset + c],
            self.training,
            self.momentum,
            self.eps,
        )

    def forward(self, x: Tensor) -> Tensor:
        mode = self.mode
        if mode == "clean":
            return self.branch(x, "c")
        if mode == "adv":
            return self.branch(x, "a")
        if mode == "mix":
            return (1 - self.gamma) * self.branch(x, "c") + self.gamma * self.branch(x, "a")
        if mode == "dual":
            if x.shape[0] % 2:
                raise ValueError(f"MBN dual mode needs an even batch [clean; adversarial], got {x.shape[0]}")
            first, second = x.chunk(2)
            out_c, out_a = self.branch(first, "c"), self.branch(second, "a")
            if self.merge:
                mixed = (1 - self.gamma) * out_c + self.gamma * out_a
                return torch.cat([mixed, mixed])
            return torch.cat([out_c, out_a])
        raise ValueError(f"unknown MBN mode {mode!r}; expected one of {', '.join(_LAYER_MODES)}")

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, mode={self.mode}"


@register_norm("mbn", display="MBN", batch_stats=True, routed=True)
def _mixture_batch_norm(num_channels: int, device=None, dtype=None) -> nn.Module:
    """Mixture BN (Xie & Yuille, 2020): BN_c for clean and BN_a for adversarial images."""
    return MixtureBatchNorm2d(num_channels, device=device, dtype=dtype)


def mbn_layers(model: nn.Module) -> list[MixtureBatchNorm2d]:
    """The model's MBN layers, in module order."""
    return [m for m in model.modules() if isinstance(m, MixtureBatchNorm2d)]


def _require_mbn(model: nn.Module, what: str) -> list[MixtureBatchNorm2d]:
    layers = mbn_layers(model)
    if not layers:
        raise ValueError(
            f"{what} needs a model with mixture BN layers (norm 'mbn'), but {type(model).__name__} has "
            f"none; build it with create_model(..., norm='mbn') (config: model.norm=mbn)"
        )
    return layers


@contextlib.contextmanager
def _layer_settings(layers: Sequence[MixtureBatchNorm2d], settings: Sequence[tuple[str, float, bool]]) -> Iterator[None]:
    saved = [(m.mode, m.gamma, m.merge) for m in layers]
    try:
        for m, (mode, gamma, merge) in zip(layers, settings):
            m.mode, m.gamma, m.merge = mode, gamma, merge
        yield
    finally:
        for m, (mode, gamma, merge) in zip(layers, saved):
            m.mode, m.gamma, m.merge = mode, gamma, merge


@contextlib.contextmanager
def mbn_route(model: nn.Module, route: str) -> Iterator[nn.Module]:
    """Route every MBN layer of ``model`` through BN_c (``"clean"``) or BN_a (``"adv"``).

    The previous routing is restored on exit, also on an exception. Raises ``ValueError`` for
    a model without MBN layers, so a misconfigured MBNAT run fails instead of training BN.
    """
    if route not in ROUTES:
        raise ValueError(f"route must be 'clean' or 'adv', got {route!r}")
    layers = _require_mbn(model, "mbn_route")
    with _layer_settings(layers, [(route, 1.0, False)] * len(layers)):
        yield model


def mixed_layer_indices(num_layers: int, p: float, seed: int) -> list[int]:
    """Which of ``num_layers`` MBN layers mix in "random" mode: round(p% · L) of them, drawn
    without replacement by a generator seeded with ``seed`` (so the same seed, the same layers)."""
    k = round(p / 100 * num_layers)
    generator = torch.Generator().manual_seed(int(seed))
    return sorted(torch.randperm(num_layers, generator=generator)[:k].tolist())


class MBNInterpolation(nn.Module):
    """An MBN network evaluated at interpolation weight γ; see :func:`interpolated`."""

    def __init__(self, model: nn.Module, gamma: float, mode: str = "logits", p: float = 50.0, seed: int = 0) -> None:
        super().__init__()
        layers = _require_mbn(model, "interpolated()")
        if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not 0.0 <= float(gamma) <= 1.0:
            raise ValueError(f"gamma must be a number in [0, 1], got {gamma!r}")
        if mode not in INTERPOLATION_MODES:
            raise ValueError(f"mode must be one of {', '.join(INTERPOLATION_MODES)}, got {mode!r}")
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= float(p) <= 100.0:
            raise ValueError(f"p must be a percentage in [0, 100], got {p!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an int, got {seed!r}")
        self.model = model
        self.gamma = float(gamma)
        self.mode = mode
        self.p = float(p)
        self.seed = seed
        self._layers = layers  # a plain list: not registered twice as submodules
        self.mixed_layers = mixed_layer_indices(len(layers), self.p, seed) if mode == "random" else []

    @property
    def num_classes(self) -> int:
        return int(getattr(self.model, "num_classes"))

    def _single(self, x: Tensor, route: str) -> Tensor:
        with mbn_route(self.model, route):
            return self.model(x)

    def forward(self, x: Tensor) -> Tensor:
        g = self.gamma
        if g == 0.0:  # exactly the BN_c network, in every mode
            return self._single(x, "clean")
        if g == 1.0:  # exactly the BN_a network
            return self._single(x, "adv")
        layers = self._layers
        if self.mode == "logits":
            return (1 - g) * self._single(x, "clean") + g * self._single(x, "adv")
        if self.mode == "all":
            with _layer_settings(layers, [("mix", g, False)] * len(layers)):
                return self.model(x)
        mixed = set(self.mixed_layers)
        settings = [("dual", g, i in mixed) for i in range(len(layers))]
        with _layer_settings(layers, settings):
            z_c, z_a = self.model(torch.cat([x, x])).chunk(2)
        return (1 - g) * z_c + g * z_a

    def extra_repr(self) -> str:
        extra = f", p={self.p:g}, seed={self.seed}, mixed_layers={self.mixed_layers}" if self.mode == "random" else ""
        return f"gamma={self.gamma:g}, mode={self.mode!r}{extra}"


def interpolated(model: nn.Module, gamma: float, mode: str = "logits", *, p: float = 50.0, seed: int = 0) -> nn.Module:
    """The MBN ``model`` at test-time interpolation weight ``gamma`` (NoFrost paper, App. A).

    Args:
        model: a network with MBN layers (``norm="mbn"``, e.g. ``load_model`` of an mbnat run).
        gamma: γ in [0, 1]; 0 is the BN_c network, 1 the BN_a network (exactly, in every mode).
        mode: "logits" (z = (1 − γ)·z_c + γ·z_a; the paper's default), "all" (every MBN layer
            outputs (1 − γ)·BN_c + γ·BN_a) or "random" (p% of the layers mix, the others keep
            the two streams apart; see the module docstring).
        p: percentage of MBN layers that mix in "random" mode.
        seed: which layers those are (a fixed seed gives a fixed choice).

    Returns an ordinary ``nn.Module`` from [0, 1] images to logits that shares ``model``'s
    parameters, in eval mode (``model`` is put in eval mode too). Gradients flow through the
    interpolation, so attacks on it are white-box; the attack contract applies unchanged.
    """
    return MBNInterpolation(model, gamma, mode, p, seed).eval()
