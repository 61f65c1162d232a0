"""Clean/adversarial loss mixing, Eq. (1) of Wang et al. 2022 (NoFrost):

    L = (1 - λ)·CE(f(x), y) + λ·CE(f(x*), y),   x* = PGD(x).

λ = 0 is standard training (``st``), λ = 0.5 standard adversarial training (``sat``; NoFrost is
``sat`` on a normalizer-free model), λ = 1 is PGD-AT (``pgdat``, Madry et al. 2018).

With batch norm, clean and adversarial batches go through the model in separate forward
passes: a joint pass would mix their statistics, which is the very problem the paper studies.
When no layer mixes examples (NoFrost's NF nets; IN/GN) and the trainer allows it
(``StepContext.fuse_clean_adv``), both go through one forward/backward over the concatenated
batch: the same loss, with kernels twice as large.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from nofrost.config import AttackConfig, MethodConfig
from nofrost.methods.base import StepContext, StepOutput, clean_and_adversarial_logits, cross_entropy, register_method


@dataclass
class MixedAdversarialLoss:
    lam: float

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor, ctx: StepContext) -> StepOutput:
        fused = ctx.fuse_clean_adv and 0 < self.lam < 1
        logits_clean = logits_adv = None
        if self.lam < 1 and not fused:
            with ctx.autocast():
                logits_clean = model(x)
        if self.lam > 0:
            x_adv = ctx.attack(ctx.attack_target(model), x, y)
            if fused:
                logits_clean, logits_adv = clean_and_adversarial_logits(model, x, x_adv, ctx)
            else:
                with ctx.autocast():
                    logits_adv = model(x_adv)
        loss = x.new_zeros(())
        if logits_clean is not None:
            loss = loss + (1 - self.lam) * cross_entropy(logits_clean, y, ctx)
        if logits_adv is not None:
            loss = loss + self.lam * cross_entropy(logits_adv, y, ctx)
        return StepOutput(loss=loss, logits_clean=logits_clean, logits_adv=logits_adv)


def _registered(name: str, default_lam: float, *, fixed: bool, display_nf: str | None = None) -> None:
    @register_method(name, uses=("lam",), display_nf=display_nf)
    def factory(config: MethodConfig, attack: AttackConfig | None = None) -> MixedAdversarialLoss:
        if config.lam is None:
            return MixedAdversarialLoss(lam=default_lam)
        if fixed and config.lam != default_lam:
            raise ValueError(
                f"method {name!r} fixes λ = {default_lam:g}; use method 'sat' with "
                f"method.lam={config.lam:g} for another mix"
            )
        return MixedAdversarialLoss(lam=config.lam)


_registered("st", 0.0, fixed=True)
_registered("sat", 0.5, fixed=False, display_nf="NoFrost")  # NoFrost is SAT on an NF network (Sec. 3.1)
_registered("pgdat", 1.0, fixed=True)
