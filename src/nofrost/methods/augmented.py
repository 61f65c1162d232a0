"""NoFrost* and the augmentation baselines of the NoFrost paper's Sec. 4.4 (Figures 3-4).

Each loss is the mean of cross-entropies over views of the batch (x: the clean, standard-
augmented batch; x̂: DeepAugment or texture-debiased augmentation; x*: PGD on x):

- ``nofrost-star``, Eq. 2: (CE(f(x), y) + CE(f(x̂), y) + CE(f(x*), y)) / 3, where each
  example's x̂ is its DeepAugment image or its TDA image with probability 1/2 each. NoFrost*
  is this loss on a normalizer-free model (the presets).
- ``deepaugment``: (CE(f(x)) + CE(f(x_DA))) / 2, ``tda``: (CE(f(x)) + CE(f(x_TDA))) / 2 — clean
  images plus one augmentation, as the reference's two-sub-batch ComprehensiveRobustnessDataset
  (utils/crt_dataloader.py) and Hendrycks et al.'s DeepAugment training on the union of clean
  and augmented images.
- ``combine``: (CE(f(x)) + CE(f(x_DA)) + CE(f(x_TDA)) + CE(f(x*))) / 4, the paper's "Combine"
  (clean, adversarial, DeepAugment and TDA samples on a BN network, the presets); equal
  weights as the reference's ``CRT_TDAT.py``: ``(loss_clean + loss_deepaug +
  loss_texture_debias + loss_adv)/4`` (line 247).

The TDA view comes from the loader (the method's ``views``; the reference loads it as its own
dataset next to the clean one); DeepAugment runs here, on the training device under the step's
autocast, on the clean batch. x* is made from x with the training attack. On models where no
layer mixes examples all views go through one forward/backward; with batch norm each view has
its own pass, as the reference's separate ``model(...)`` calls.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from nofrost.config import AttackConfig, MethodConfig
from nofrost.data.deepaugment import DeepAugment
from nofrost.methods.base import StepContext, StepOutput, cross_entropy, joint_logits, register_method

DEEPAUGMENT_FIELDS = ("deepaugment", "cae_weights", "edsr_weights", "noise2net_max_epsilon")
DEEPAUGMENT_SHARE = 0.5  # Eq. 2: DeepAugment or TDA, each with probability 1/2


@dataclass
class AugmentedLoss:
    """Mean cross-entropy over the clean batch and the views named in ``terms``: ``"deepaugment"``,
    ``"tda"``, ``"either"`` (per example DeepAugment or TDA, Eq. 2) and ``"adversarial"``."""

    terms: tuple[str, ...]
    deepaugment: DeepAugment | None = None
    config: MethodConfig | None = None  # the method's settings with the DeepAugment variant resolved

    @property
    def views(self) -> tuple[str, ...]:
        """The loader views this loss needs."""
        return ("tda",) if {"tda", "either"} & set(self.terms) else ()

    def describe(self) -> str:
        if self.deepaugment is None:
            return ""
        weights = "weight-free" if self.deepaugment.variant == "noise2net" else "weights from the config"
        return f"DeepAugment variant: {self.deepaugment.variant} ({weights})"

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor, ctx: StepContext) -> StepOutput:
        batches = [x]
        for term in self.terms:
            batches.append(self._view(term, model, x, y, ctx))
        logits = joint_logits(model, batches, ctx)
        loss = sum(cross_entropy(z, y, ctx) for z in logits) / len(logits)
        logits_adv = logits[1 + self.terms.index("adversarial")] if "adversarial" in self.terms else None
        return StepOutput(loss=loss, logits_clean=logits[0], logits_adv=logits_adv)

    def _view(self, term: str, model: nn.Module, x: Tensor, y: Tensor, ctx: StepContext) -> Tensor:
        if term == "adversarial":
            return ctx.attack(ctx.attack_target(model), x, y)
        if term == "tda":
            return _tda_view(ctx, x)
        if term == "deepaugment":
            return self._deepaugment(x, ctx)
        use_deepaugment = deepaugment_choice(len(x)).to(x.device)
        mixed = _tda_view(ctx, x).clone()
        if use_deepaugment.any():
            mixed[use_deepaugment] = self._deepaugment(x[use_deepaugment], ctx)
        return mixed

    def _deepaugment(self, x: Tensor, ctx: StepContext) -> Tensor:
        with torch.no_grad(), ctx.autocast():
            return self.deepaugment(x).to(x.dtype)


def deepaugment_choice(n: int) -> Tensor:
    """Eq. 2's per-example choice: True (DeepAugment) with probability 1/2, else TDA. Drawn
    from the global CPU RNG, so a seed gives the same choice on every device."""
    return torch.rand(n) < DEEPAUGMENT_SHARE


def _tda_view(ctx: StepContext, x: Tensor) -> Tensor:
    view = ctx.views.get("tda")
    if view is None:
        raise ValueError("this method needs the loader's 'tda' view of each batch (make_loader(views=('tda',)))")
    return view.to(x.dtype)


def _registered(name: str, terms: tuple[str, ...], display: str, display_nf: str | None = None) -> None:
    uses = DEEPAUGMENT_FIELDS if {"deepaugment", "either"} & set(terms) else ()

    @register_method(name, uses=uses, display=display, display_nf=display_nf)
    def factory(config: MethodConfig, attack: AttackConfig | None = None) -> AugmentedLoss:
        if not uses:
            return AugmentedLoss(terms=terms, config=config)
        deepaugment = DeepAugment(
            config.deepaugment, cae_weights=config.cae_weights, edsr_weights=config.edsr_weights,
            noise2net_eps=config.noise2net_max_epsilon,
        )
        resolved = dataclasses.replace(config, deepaugment=deepaugment.variant)
        return AugmentedLoss(terms=terms, deepaugment=deepaugment, config=resolved)


_registered("nofrost-star", ("either", "adversarial"), "NoFrost*", display_nf="NoFrost*")  # Sec. 3.2, on NF
_registered("deepaugment", ("deepaugment",), "DeepAugment")
_registered("tda", ("tda",), "TDA")
_registered("combine", ("deepaugment", "tda", "adversarial"), "Combine")  # Figures 3-4's BN baseline
