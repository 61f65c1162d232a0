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

import torch.nn.functional as F
from torch import Tensor, nn

from nofrost.attacks._common import check_non_negative, check_positive_int, check_step_size
from nofrost.attacks._registry import Setup, register_attack
from nofrost.attacks._steepest import one_run_attack
from nofrost.attacks.pgd import default_step_size

__all__ = ["mifgsm_attack"]


@register_attack("mifgsm", display="MIA", paper_budget=20)
def mifgsm_attack(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    setup: Setup,
    *,
    steps: int = 20,
    step_size: float | str | None = None,
    decay: float = 1.0,
    train_mode: bool = False,
    eot_iter: int = 1,
) -> Tensor:
    """MI-FGSM (Dong et al., CVPR 2018); returns ``x_adv``.

    Args:
        model, x, y, eps: as for every attack (see :mod:`nofrost.attacks`); ℓ∞ only.
        steps: iterations T (default 20, the NoFrost paper's MIA).
        step_size: α; default ``eps / steps`` (Dong et al.: T steps reach the boundary);
            ``"pgd"``: PGD's ``min(1.25 eps, eps + 4/255) / steps``, the NoFrost reference code's.
        decay: momentum decay μ (default 1.0, as in the paper); 0 gives BIM with step ε/T.
        train_mode: keep the model's train/eval modes instead of eval mode.
        eot_iter: gradients averaged over this many passes per step (EOT, for randomized models).
        generator, precision, num_classes, norm: as for every attack (:class:`Setup`);
            MI-FGSM is deterministic.
    """
    steps = check_positive_int(steps, "steps")
    eot_iter = check_positive_int(eot_iter, "eot_iter")
    if step_size is None:
        step_size = eps / steps
    elif step_size == "pgd":
        step_size = default_step_size(eps, steps)
    else:
        step_size = check_step_size(step_size, "step_size (a number, or 'pgd' for PGD's rule)")
    decay = check_non_negative(decay, "decay (e.g. 1.0)")
    return one_run_attack(
        model, x, y, eps, setup, lambda logits: F.cross_entropy(logits.float(), y, reduction="sum"),
        steps=steps, step_size=step_size, random_start=False, train_mode=train_mode, eot_iter=eot_iter,
        momentum=decay,
    )  # fmt: skip
