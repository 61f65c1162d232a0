"""FAT, friendly adversarial training: J. Zhang, X. Xu, B. Han, G. Niu, L. Cui, M. Sugiyama,
M. Kankanhalli, "Attacks which do not kill training make adversarial learning stronger",
ICML 2020.

    L = CE(f(x̃), y),   x̃ = PGD-K-τ(x): cross-entropy PGD that stops each example τ steps
                        after it is misclassified (their Algorithm 1),

i.e. the "friendly" adversarial example just past the decision boundary instead of the most
adversarial one. K = ``attack.steps`` (10 in the NoFrost paper), the step size and ε come from
the attack config, τ from ``method.tau`` (default 1, as in the NoFrost paper and FAT's).
The attack starts uniformly at random in the ε-ball and runs in eval mode unless
``attack.eval_mode: false``. The TRADES variant with this early stop is ``trades-fat``
(``nofrost.methods.trades``).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from nofrost.config import AttackConfig, MethodConfig
from nofrost.methods.base import StepContext, StepOutput, cross_entropy, register_method
from nofrost.methods.trades import DEFAULT_TAU


@dataclass
class FriendlyAdversarialLoss:
    tau: int

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor, ctx: StepContext) -> StepOutput:
        # PGD-K-τ: the training attack (CE, uniform start) with FAT's early stop.
        x_adv = ctx.attack(ctx.attack_target(model), x, y, start="uniform", tau=self.tau)
        with ctx.autocast():
            logits_adv = model(x_adv)
        return StepOutput(loss=cross_entropy(logits_adv, y, ctx), logits_adv=logits_adv)


@register_method("fat", uses=("tau",), display="FAT")
def _fat(config: MethodConfig, attack: AttackConfig) -> FriendlyAdversarialLoss:
    return FriendlyAdversarialLoss(tau=DEFAULT_TAU if config.tau is None else config.tau)
