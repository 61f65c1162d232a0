"""ℓ∞ momentum iterative FGSM (MI-FGSM; "MIA" in the NoFrost paper).

Y. Dong, F. Liao, T. Pang, H. Su, J. Zhu, X. Hu, J. Li, "Boosting Adversarial Attacks with
Momentum", CVPR 2018. Starting at the clean image, accumulate a velocity of per-example
ℓ1-normalised input gradients of the cross-entropy loss,

    g_{t+1} = μ · g_t + ∇ₓ L(x_t, y) / ‖∇ₓ L(x_t, y)‖₁,
    x_{t+1} = Clip_{x, ε}(x_t + α · sign(g_{t+1})),

with decay μ = 1 and α = ε / T for T steps (Dong et al.'s setting). The NoFrost reference
``test.py`` ran advertorch's momentum attack with its PGD step rule instead, α = min(1.25ε,
ε + 4/255) / T (0.5/255 for ε = 8/255 and 20 steps): ``step_size="pgd"``, which the ``paper``
suite uses.

Like PGD, the step loop contains no host synchronisation; validation happens up front and on
the first forward pass.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
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

__all__ = ["mifgsm_attack"]


@register_attack("mifgsm", display="MIA", paper_budget=20)
def mifgsm_attack(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    *,
    steps: int = 20,
    step_size: float | str | None = None,
    decay: float = 1.0,
    generator: torch.Generator | None = None,
    precision: str = "fp32",
    train_mode: bool = False,
    num_classes: int | None = None,
    eot_iter: int = 1,
    norm: str = "linf",
) -> Tensor:
    """MI-FGSM (Dong et al., CVPR 2018); returns ``x_adv``.

    Args:
        model, x, y, eps: as for every attack (see :mod:`nofrost.attacks`).
        steps: iterations T (default 20, the NoFrost paper's MIA).
        step_size: α; default ``eps / steps`` (Dong et al.: T steps reach the boundary);
            ``"pgd"``: PGD's ``min(1.25 eps, eps + 4/255) / steps``, the NoFrost reference code's.
        decay: momentum decay μ (default 1.0, as in the paper); 0 gives BIM with step ε/T.
        generator: accepted for a uniform attack interface; MI-FGSM is deterministic.
        precision: ``"fp32"`` or ``"bf16"`` forward passes (the loss is computed in fp32).
        train_mode: keep the model's train/eval modes instead of eval mode.
        num_classes: the model's number of classes if known (validates the labels up front).
        eot_iter: gradients averaged over this many passes per step (EOT, for randomized models).
        norm: only ``"linf"``: the attack is defined for ℓ∞ (ℓ2 is refused with a message).
    """
    eps, num_classes = check_attack_inputs(model, x, y, eps, num_classes, norm=norm, attack="mifgsm")
    steps = check_positive_int(steps, "steps")
    eot_iter = check_positive_int(eot_iter, "eot_iter")
    if step_size is None:
        step_size = eps / steps
    elif step_size == "pgd":
        step_size = default_step_size(eps, steps)
    else:
        step_size = check_step_size(step_size, "step_size (a number, or 'pgd' for PGD's rule)")
    decay = check_non_negative(decay, "decay (e.g. 1.0)")
    check_precision(precision)
    check_generator(generator)

    x0 = x.detach()
    if x0.shape[0] == 0:
        return x0.clone()
    ball = Ball(x0, eps)

    with attack_mode(model, train_mode=train_mode), torch.enable_grad():
        x_adv, _ = steepest_ascent(
            model, x0, ball, lambda logits: F.cross_entropy(logits.float(), y, reduction="sum"),
            steps=steps, step_size=step_size, precision_ctx=autocast(precision, x0.device), momentum=decay,
            eot_iter=eot_iter,
            on_first_logits=None if num_classes is not None else (lambda logits: check_logits_and_labels(logits, y)),
        )  # fmt: skip
    return x_adv
