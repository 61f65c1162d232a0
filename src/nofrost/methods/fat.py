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
from typing import Callable

from torch import Tensor, nn

from nofrost.config import AttackConfig, MethodConfig
from nofrost.methods.base import StepContext, StepOutput, cross_entropy, register_method
from nofrost.methods.inner_max import inner_pgd
from nofrost.methods.trades import DEFAULT_TAU


@dataclass
class FriendlyAdversarialLoss:
    attack: Callable[[nn.Module, Tensor, Tensor], Tensor]  # the early-stopped PGD

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor, ctx: StepContext) -> StepOutput:
        x_adv = self.attack(ctx.attack_target(model), x, y)
        with ctx.autocast():
            logits_adv = model(x_adv)
        return StepOutput(loss=cross_entropy(logits_adv, y, ctx), logits_adv=logits_adv)


def early_stopped_attack(attack: AttackConfig, tau: int) -> Callable[[nn.Module, Tensor, Tensor], Tensor]:
    """PGD-K-τ with the training attack's settings (CE loss, uniform random start)."""

    def run(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        x_adv, _ = inner_pgd(
            model, x, y, attack.eps, steps=attack.steps, step_size=attack.step_size, loss="ce", tau=tau,
            start="uniform", precision=attack.precision, train_mode=attack.train_mode(),
        )
        return x_adv

    return run


@register_method("fat", uses=("tau",))
def _fat(config: MethodConfig, attack: AttackConfig) -> FriendlyAdversarialLoss:
    tau = DEFAULT_TAU if config.tau is None else config.tau
    return FriendlyAdversarialLoss(attack=early_stopped_attack(attack, tau))
