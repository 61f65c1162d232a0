"""ℓ∞ PGD on the Carlini–Wagner margin loss ("CW∞" in the NoFrost paper).

N. Carlini, D. Wagner, "Towards Evaluating the Robustness of Neural Networks", IEEE S&P 2017,
proposed the margin objective f(x) = max(z_y(x) − max_{i≠y} z_i(x), −κ) on the logits z. The
ℓ∞ "CW" attack of robustness evaluations (here: the NoFrost paper's CW∞ column, H. Wang et
al., "Removing Batch Normalization Boosts Adversarial Training", ICML 2022) is PGD that
*minimises* this margin instead of maximising the cross-entropy: a random start in the
ε-ball, signed-gradient steps, projection onto the ε-ball ∩ [0, 1] after each step.

κ ("confidence") defaults to 50 as in the NoFrost reference code: the loss keeps pushing the
margin down until the wrong class leads by 50 logits, i.e. in practice for all 20 steps.
Unlike the cross-entropy, the margin does not saturate on confidently classified examples, so
this attack often beats PGD-CE on models whose softmax is very peaked.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nofrost.attacks._common import (
    attack_mode,
    autocast,
    check_attack_inputs,
    check_generator,
    check_logits_and_labels,
    check_non_negative,
    check_positive_int,
    check_precision,
    check_step_size,
)
from nofrost.attacks._core import Ball
from nofrost.attacks._registry import register_attack
from nofrost.attacks._steepest import steepest_ascent
from nofrost.attacks.pgd import default_step_size

__all__ = ["cw_linf_attack", "cw_margin"]


def cw_margin(logits: Tensor, y: Tensor, confidence: float = 50.0) -> Tensor:
    """Per-example ``max(z_y − max_{i≠y} z_i, −κ)``; negative iff the example is misclassified."""
    z = logits.float()
    true = z.gather(1, y[:, None]).squeeze(1)
    other = z.scatter(1, y[:, None], float("-inf")).amax(dim=1)
    return (true - other).clamp(min=-confidence)


@register_attack("cw-linf", display="CW∞", paper_budget=20)
def cw_linf_attack(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    *,
    steps: int = 20,
    step_size: float | None = None,
    confidence: float = 50.0,
    random_start: bool = True,
    generator: torch.Generator | None = None,
    precision: str = "fp32",
    train_mode: bool = False,
    num_classes: int | None = None,
    eot_iter: int = 1,
    norm: str = "linf",
) -> Tensor:
    """ℓ∞ PGD on the Carlini–Wagner margin loss; returns ``x_adv``.

    Args:
        model, x, y, eps: as for every attack (see :mod:`nofrost.attacks`).
        steps: gradient steps (default 20, the NoFrost paper's evaluation budget).
        step_size: α; default :func:`~nofrost.attacks.pgd.default_step_size` as for PGD.
        confidence: κ, the margin below which the loss stops decreasing (default 50).
        random_start: start uniformly at random in the ε-ball (default, as PGD) or at ``x``.
        generator: source of the random start, for reproducible ``x_adv``.
        precision: ``"fp32"`` or ``"bf16"`` forward passes (the loss is computed in fp32).
        train_mode: keep the model's train/eval modes instead of eval mode.
        num_classes: the model's number of classes if known (validates the labels up front).
        eot_iter: gradients averaged over this many passes per step (EOT, for randomized models).
        norm: only ``"linf"``: the attack is defined for ℓ∞ (ℓ2 is refused with a message).
    """
    eps, num_classes = check_attack_inputs(model, x, y, eps, num_classes, norm=norm, attack="cw-linf")
    steps = check_positive_int(steps, "steps")
    step_size = default_step_size(eps, steps) if step_size is None else check_step_size(step_size)
    confidence = check_non_negative(confidence, "confidence (κ)")
    eot_iter = check_positive_int(eot_iter, "eot_iter")
    check_precision(precision)
    check_generator(generator)

    x0 = x.detach()
    if x0.shape[0] == 0:
        return x0.clone()
    ball = Ball(x0, eps)

    with attack_mode(model, train_mode=train_mode), torch.enable_grad():
        start = ball.random_start(generator) if random_start else x0
        x_adv, _ = steepest_ascent(
            model, start, ball,
            # Descend on the margin (push the true logit below the best other one).
            lambda logits: -cw_margin(logits, y, confidence).sum(),
            steps=steps, step_size=step_size, precision_ctx=autocast(precision, x0.device), eot_iter=eot_iter,
            # before the margin's gather, which would fail on bad labels
            on_first_logits=None if num_classes is not None else (lambda logits: check_logits_and_labels(logits, y)),
        )  # fmt: skip
    return x_adv
