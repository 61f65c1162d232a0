"""DeepAugment (Hendrycks et al. 2021, "The Many Faces of Robustness"): images passed through
image-to-image networks whose weights and activations are randomly distorted for every batch.

Variants (``method.deepaugment``):

- ``noise2net`` (the default): a randomly initialised network drawn afresh per batch; needs no
  weight files (:mod:`.noise2net`).
- ``cae``, ``edsr``: the published CAE / EDSR-baseline-x4 networks (:mod:`.cae`,
  :mod:`.edsr`), loaded from the weight files the config names (``method.cae_weights``,
  ``method.edsr_weights``) and distorted per batch as the reference code does.
- ``cae+edsr``: both; each batch goes through one of them, chosen with probability 1/2.

It runs on the device of the images it gets, under the caller's autocast, without gradients,
drawing from torch's global RNGs (see :mod:`._random`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from nofrost.data.deepaugment import _random
from nofrost.data.deepaugment.cae import CAE, distort_cae_weights, distorted_cae_forward
from nofrost.data.deepaugment.edsr import EDSR, distort_edsr_weights, distorted_edsr_forward
from nofrost.data.deepaugment.noise2net import MAX_EPS, Noise2Net

VARIANTS = ("noise2net", "cae", "edsr", "cae+edsr")


class DistortedNetwork:
    """A network with published weights whose copy of them is distorted afresh for every call
    (the reference's ``net.load_state_dict(get_weights())``); the loaded weights stay intact."""

    def __init__(self, variant: str, net: nn.Module, state: dict[str, Tensor],
                 distort: Callable[[dict[str, Tensor]], dict[str, Tensor]],
                 forward: Callable[[nn.Module, Tensor], Tensor]) -> None:
        self.variant, self.net, self.state, self.distort, self.forward = variant, net.eval(), state, distort, forward

    @torch.no_grad()
    def __call__(self, x: Tensor) -> Tensor:
        if next(self.net.parameters()).device != x.device:
            self.net.to(x.device)
            self.state = {k: v.to(x.device) for k, v in self.state.items()}
        self.net.load_state_dict(self.distort(self.state))
        return self.forward(self.net, x)


class DeepAugment:
    """``deepaugment(images in [0, 1]) -> images in [0, 1]`` of the same shape, for one variant."""

    def __init__(self, variant: str | None = None, *, cae_weights: str | None = None,
                 edsr_weights: str | None = None, noise2net_eps: float | None = None) -> None:
        variant = variant or resolve_variant(cae_weights, edsr_weights)
        if variant not in VARIANTS:
            raise ValueError(f"unknown DeepAugment variant {variant!r}; choose one of {', '.join(VARIANTS)}")
        uses = variant.split("+")
        for name, path in (("cae", cae_weights), ("edsr", edsr_weights)):
            if name in uses and path is None:
                raise ValueError(
                    f"DeepAugment variant {variant!r} needs method.{name}_weights (the published {name.upper()} "
                    "weights as a .safetensors or torch state-dict file); without weight files use the "
                    "weight-free variant 'noise2net'"
                )
            if name not in uses and path is not None:
                raise ValueError(f"method.{name}_weights is set but DeepAugment variant {variant!r} does not use it")
        if noise2net_eps is not None and variant != "noise2net":
            raise ValueError(f"method.noise2net_eps applies to the 'noise2net' variant only, not {variant!r}")
        self.variant = variant
        self.networks: list[Callable[[Tensor], Tensor]] = []
        if variant == "noise2net":
            self.networks.append(Noise2Net(MAX_EPS if noise2net_eps is None else noise2net_eps))
        if "cae" in uses:
            net = CAE()
            self.networks.append(DistortedNetwork("cae", net, load_weights(cae_weights, net, "CAE"),
                                                  distort_cae_weights, distorted_cae_forward))
        if "edsr" in uses:
            net = EDSR()
            self.networks.append(DistortedNetwork("edsr", net, load_weights(edsr_weights, net, "EDSR-baseline x4"),
                                                  distort_edsr_weights, distorted_edsr_forward))

    def __call__(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"DeepAugment expects (N, 3, H, W) RGB batches in [0, 1], got shape {tuple(x.shape)}")
        network = self.networks[0] if len(self.networks) == 1 else _random.choice(self.networks)
        with torch.no_grad():
            return network(x).to(x.dtype)


def resolve_variant(cae_weights: str | None, edsr_weights: str | None) -> str:
    """The variant the weight files imply: both, one of them, or ``noise2net`` with none."""
    given = [name for name, path in (("cae", cae_weights), ("edsr", edsr_weights)) if path is not None]
    return "+".join(given) or "noise2net"


#: Keys the published EDSR file carries that our fixed mean shifts replace.
_IGNORED_PREFIXES = ("sub_mean.", "add_mean.")


def load_weights(path: str | Path | None, net: nn.Module, architecture: str) -> dict[str, Tensor]:
    """The state dict in ``path`` (``.safetensors``, or a torch state dict read with
    ``weights_only=True``), checked key by key and shape by shape against ``net``."""
    path = Path(str(path))
    if not path.is_file():
        raise FileNotFoundError(f"DeepAugment {architecture} weight file {str(path)!r} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001  (any unreadable file: one message)
        raise ValueError(f"cannot read DeepAugment {architecture} weights from {str(path)!r}: {error}") from None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{str(path)!r} does not hold a state dict of tensors (expected {architecture} weights)")
    state = {k.removeprefix("module."): v for k, v in state.items() if not k.removeprefix("module.").startswith(_IGNORED_PREFIXES)}
    expected = {k: v.shape for k, v in net.state_dict().items()}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if state[k].shape != expected[k])
    if missing or unexpected or wrong:
        detail = (f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}" if unexpected
                  else f"{wrong[0]} has shape {tuple(state[wrong[0]].shape)}, expected {tuple(expected[wrong[0]])}")
        raise ValueError(
            f"{str(path)!r} does not hold {architecture} weights ({len(missing)} missing, {len(unexpected)} "
            f"unexpected, {len(wrong)} mis-shaped keys; {detail}); pass the published {architecture} file"
        )
    return {k: state[k].float() for k in expected}


__all__ = ["DeepAugment", "VARIANTS", "load_weights", "resolve_variant", "CAE", "EDSR", "Noise2Net"]
