"""MBNAT: adversarial training with mixture BN, C. Xie, A. Yuille, "Intriguing properties of
adversarial training at scale", ICLR 2020 (the NoFrost paper's main baseline, Sec. 2.2).

    L = (1 − λ)·CE(f_c(x), y) + λ·CE(f_a(x*), y),   x* = PGD on f_a,

where f_c (f_a) is the network with every normalization layer routed through BN_c (BN_a):
the clean batch goes through BN_c, and both the generation of x* and the adversarial batch
go through BN_a, so each BN only ever sees one distribution. λ = ``method.lam`` (default
0.5: equal clean and adversarial weight, the mixture that MBN was designed for). The model
must be built with ``model.norm: mbn`` (``nofrost.models.mbn``); at test time pick an
operating point between the two paths with ``nofrost.models.mbn.interpolated``.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from nofrost.config import AttackConfig, MethodConfig
from nofrost.methods.base import StepContext, StepOutput, cross_entropy, register_method
from nofrost.models.mbn import mbn_route

DEFAULT_LAM = 0.5


@dataclass
class MixtureBNAdversarialLoss:
    lam: float

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor, ctx: StepContext) -> StepOutput:
        logits_clean = logits_adv = None
        loss = x.new_zeros(())
        if self.lam < 1:
            with mbn_route(model, "clean"), ctx.autocast():
                logits_clean = model(x)
            loss = loss + (1 - self.lam) * cross_entropy(logits_clean, y, ctx)
        if self.lam > 0:
            with mbn_route(model, "adv"):
                x_adv = ctx.attack(ctx.attack_target(model), x, y)
                with ctx.autocast():
                    logits_adv = model(x_adv)
            loss = loss + self.lam * cross_entropy(logits_adv, y, ctx)
        return StepOutput(loss=loss, logits_clean=logits_clean, logits_adv=logits_adv)


@register_method("mbnat", uses=("lam",), display="MBNAT")
def _mbnat(config: MethodConfig, attack: AttackConfig) -> MixtureBNAdversarialLoss:
    return MixtureBNAdversarialLoss(lam=DEFAULT_LAM if config.lam is None else config.lam)
