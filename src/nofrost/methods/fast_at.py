"""Fast AT: E. Wong, L. Rice, J. Z. Kolter, "Fast is better than free: revisiting adversarial
training", ICLR 2020.

    δ₀ ~ U(−ε, ε)  (then x + δ₀ clipped to [0, 1]),
    x* = Π_{B(x, ε) ∩ [0,1]}(x + δ₀ + α · sign(∇ CE(f(x + δ₀), y))),   α = 1.25 ε,
    L  = CE(f(x*), y)

FGSM from a uniformly random start ("FGSM-RS"), trained on the adversarial loss only (λ = 1
in Eq. (1) of the NoFrost paper, as in Wong et al.). α is ``attack.step_size`` if set, else
1.25·``attack.eps`` (the value Wong et al. found best; α ≥ 2ε led to catastrophic overfitting).
``attack.steps`` is ignored: Fast AT always takes exactly one step. The step runs through the
training attack (``StepContext.attack``: one step, random start), so it obeys the attack
contract. It is
taken in train mode, as Wong et al. take it (``model.train()`` around the whole step in their
CIFAR and ImageNet scripts: dropout on, BN on batch statistics, whose running averages the
FGSM forward also updates), unless ``attack.eval_mode: true``.
Their cyclic learning rate and mixed precision are trainer settings, not part of the method.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from nofrost.config import AttackConfig, MethodConfig
from nofrost.methods.base import StepContext, StepOutput, cross_entropy, register_method

STEP_FACTOR = 1.25  # α = 1.25 ε


def fgsm_step_size(attack: AttackConfig) -> float:
    return attack.step_size if attack.step_size is not None else STEP_FACTOR * attack.eps


@dataclass
class FastAdversarialLoss:
    step_size: float
    train_mode: bool = True

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor, ctx: StepContext) -> StepOutput:
        # FGSM-RS: one step of 1.25·ε from a uniform random start, through the training attack.
        x_adv = ctx.attack(ctx.attack_target(model), x, y, steps=1, step_size=self.step_size, start="uniform",
                           train_mode=self.train_mode)
        with ctx.autocast():
            logits_adv = model(x_adv)
        return StepOutput(loss=cross_entropy(logits_adv, y, ctx), logits_adv=logits_adv)


@register_method("fast-at", display="FastAT")
def _fast_at(config: MethodConfig, attack: AttackConfig) -> FastAdversarialLoss:
    return FastAdversarialLoss(step_size=fgsm_step_size(attack), train_mode=attack.train_mode(method_default=True))
