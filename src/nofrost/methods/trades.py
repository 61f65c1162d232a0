"""TRADES: H. Zhang, Y. Yu, J. Jiao, E. P. Xing, L. El Ghaoui, M. I. Jordan, "Theoretically
principled trade-off between robustness and accuracy", ICML 2019.

    L = CE(f(x), y) + β · KL(p(x) ‖ p(x*)),   x* = argmax_{‖x'−x‖∞ ≤ ε} KL(p(x) ‖ p(x')),

p = softmax ∘ f, the KL summed over classes and averaged over the batch. x* comes from PGD on
the KL (``attack.steps`` steps of ``attack.step_size``, default as ``pgd``) started at
x + 0.001·N(0, I), in eval mode unless ``attack.eval_mode: false``. Gradients of the loss flow
through both p(x) and p(x*), as in the reference implementation.

β defaults to 1, the value the NoFrost paper (Wang et al., ICML 2022, Sec. 4.1) uses for
TRADES and TRADES-FAT "following the original TRADES paper" (whose CIFAR-10 runs use β = 6):
``method.beta``. ``trades-fat`` (the NoFrost paper's TRADES-FAT, after Zhang et al. 2020)
uses the same loss with FAT's early-stopped KL attack (``method.tau``, default 1).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from nofrost.config import AttackConfig, MethodConfig
from nofrost.methods.base import StepContext, StepOutput, clean_and_adversarial_logits, cross_entropy, register_method
from nofrost.methods.inner_max import kl_divergence

DEFAULT_BETA = 1.0
DEFAULT_TAU = 1


@dataclass
class TradesLoss:
    beta: float
    tau: int | None = None  # TRADES-FAT: the KL attack stops τ steps after misclassification

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor, ctx: StepContext) -> StepOutput:
        # The KL maximisation from x + 0.001·N(0, I), with the training attack's settings.
        x_adv = ctx.attack(ctx.attack_target(model), x, y, loss="kl", start="normal", tau=self.tau)
        logits_clean, logits_adv = clean_and_adversarial_logits(model, x, x_adv, ctx)
        loss = cross_entropy(logits_clean, y, ctx) + self.beta * kl_divergence(logits_clean, logits_adv)
        return StepOutput(loss=loss, logits_clean=logits_clean, logits_adv=logits_adv)


@register_method("trades", uses=("beta",), display="TRADES")
def _trades(config: MethodConfig, attack: AttackConfig) -> TradesLoss:
    return TradesLoss(beta=DEFAULT_BETA if config.beta is None else config.beta)


@register_method("trades-fat", uses=("beta", "tau"), display="TRADES-FAT")
def _trades_fat(config: MethodConfig, attack: AttackConfig) -> TradesLoss:
    beta = DEFAULT_BETA if config.beta is None else config.beta
    return TradesLoss(beta=beta, tau=DEFAULT_TAU if config.tau is None else config.tau)
