"""ℓ∞ Basic Iterative Method (BIM, "iterative FGSM").

A. Kurakin, I. Goodfellow, S. Bengio, "Adversarial Examples in the Physical World", ICLR 2017
workshop (arXiv:1607.02533). Start at the clean image (no random start), take ``steps`` steps
of size α along the sign of the input gradient of the cross-entropy loss, and clip to the
ε-ball ∩ [0, 1] after each step.

Kurakin et al. use α = 1 (on the 0-255 scale) and min(ε + 4, 1.25 ε) iterations, i.e. a total
path length of min(1.25 ε, ε + 4/255); with a fixed number of ``steps`` the same path length
gives α = min(1.25 ε, ε + 4/255) / steps, which is :func:`nofrost.attacks.pgd.default_step_size`
(the NoFrost reference code took its PGD step size from this rule). BIM is PGD without the
random start, so it is implemented as exactly that.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nofrost.attacks._registry import register_attack
from nofrost.attacks.pgd import pgd_attack

__all__ = ["bim_attack"]


@register_attack("bim", display="BIM", norms=("linf", "l2"))
def bim_attack(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    *,
    steps: int = 20,
    step_size: float | None = None,
    generator: torch.Generator | None = None,
    precision: str = "fp32",
    train_mode: bool = False,
    num_classes: int | None = None,
    eot_iter: int = 1,
    norm: str = "linf",
) -> Tensor:
    """BIM / iterative FGSM (Kurakin et al., 2017): PGD from the clean image; returns ``x_adv``.

    Args:
        model, x, y, eps: as for every attack (see :mod:`nofrost.attacks`).
        steps: gradient steps (default 20, the NoFrost paper's evaluation budget).
        step_size: α; default :func:`~nofrost.attacks.pgd.default_step_size` as for PGD.
        generator: accepted for a uniform attack interface; BIM is deterministic.
        precision: ``"fp32"`` or ``"bf16"`` forward passes.
        train_mode: keep the model's train/eval modes instead of eval mode.
        num_classes: the model's number of classes if known (validates the labels up front).
        eot_iter: gradients averaged over this many passes per step (EOT, for randomized models).
        norm: the threat model, ``"linf"`` or ``"l2"`` (steps along the normalised gradient).
    """
    # pgd_attack validates everything up front (eps, images, labels, steps, step_size, ...).
    return pgd_attack(
        model,
        x,
        y,
        eps,
        steps=steps,
        step_size=step_size,
        restarts=1,
        random_start=False,
        generator=generator,
        precision=precision,
        train_mode=train_mode,
        num_classes=num_classes,
        eot_iter=eot_iter,
        norm=norm,
    )
