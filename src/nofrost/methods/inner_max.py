"""Inner maximizations shared by TRADES and FAT: KL or CE PGD, optionally early-stopped.

One small loop covers the three attacks the TRADES/FAT family needs, because none of them is
plain cross-entropy PGD (which ``nofrost.attacks.pgd_attack`` already is):

* TRADES (Zhang et al., ICML 2019): maximize KL(p(x) ‖ p(x')) from x' = x + 0.001·N(0, I);
* FAT (Zhang et al., ICML 2020): cross-entropy PGD stopped τ steps after misclassification
  (their Algorithm 1, "PGD-K-τ"), from a uniform random start in the ε-ball;
* TRADES-FAT: the KL objective with FAT's early stop, from the 0.001·N(0, I) start.

It follows the attack contract of ``nofrost.attacks``: it runs inside ``attack_mode`` (eval
mode unless ``train_mode``; parameters frozen, every flag restored), takes gradients with
``input_gradient`` and projects onto the exact ℓ∞ ball (``Ball``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nofrost.attacks import attack_mode, autocast
from nofrost.attacks._common import (
    check_attack_inputs,
    check_positive_int,
    check_step_size,
    gaussian_like,
)
from nofrost.attacks._core import Ball
from nofrost.attacks._steepest import steepest_ascent
from nofrost.attacks.pgd import default_step_size

STARTS = ("uniform", "normal", "none")
LOSSES = ("ce", "kl")
NORMAL_START_STD = 0.001  # TRADES' start: x + 0.001·N(0, I)


def kl_divergence(logits_p: Tensor, logits_q: Tensor, reduction: str = "batchmean") -> Tensor:
    """KL(p ‖ q) = Σ_k p_k (log p_k − log q_k) with p = softmax(logits_p), q = softmax(logits_q).

    ``reduction``: "batchmean" (sum over classes, mean over the batch: TRADES' loss), "sum",
    or "none" (one value per example). Computed in float32.
    """
    log_p = F.log_softmax(logits_p.float(), dim=1)
    log_q = F.log_softmax(logits_q.float(), dim=1)
    per_example = (log_p.exp() * (log_p - log_q)).sum(dim=1)
    if reduction == "none":
        return per_example
    if reduction == "sum":
        return per_example.sum()
    if reduction == "batchmean":
        return per_example.mean()
    raise ValueError(f"reduction must be 'batchmean', 'sum' or 'none', got {reduction!r}")


def inner_pgd(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    *,
    steps: int = 10,
    step_size: float | None = None,
    loss: str = "ce",
    tau: int | None = None,
    start: str = "uniform",
    precision: str = "fp32",
    train_mode: bool = False,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """ℓ∞ PGD on ``loss`` ("ce": CE(f(x'), y); "kl": KL(p(x) ‖ p(x'))), early-stopped if ``tau``.

    Early stop (FAT, Zhang et al. 2020, Algorithm 1): before each step an example that is
    misclassified (argmax f(x') ≠ y) with budget 0 stops where it is; a misclassified example
    with budget left spends one unit and steps on. Every budget starts at ``tau``, so an example
    that stays misclassified once it flips takes exactly ``tau`` more steps (``tau=0``: it stops
    at the first misclassified iterate, the start included); ``steps`` caps the total. With
    ``tau=None`` every example takes all ``steps`` steps.

    ``start``: "uniform" in the ε-ball, "normal" (x + 0.001·N(0, I), TRADES) or "none" (x).
    ``step_size`` defaults to that of ``pgd`` (:func:`nofrost.attacks.default_step_size`).

    Returns ``(x_adv, steps_taken)``: the (detached) examples, in [0, 1] and within ``eps`` of
    ``x``, and the int64 number of gradient steps each one took.
    """
    eps, _ = check_attack_inputs(model, x, y, eps)
    steps = check_positive_int(steps, "steps")
    step_size = default_step_size(eps, steps) if step_size is None else check_step_size(step_size)
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    if start not in STARTS:
        raise ValueError(f"start must be one of {', '.join(STARTS)}, got {start!r}")
    if tau is not None and (isinstance(tau, bool) or not isinstance(tau, int) or tau < 0):
        raise ValueError(f"tau must be an integer >= 0 or None, got {tau!r}")

    x0 = x.detach()
    n = x0.shape[0]
    steps_taken = torch.zeros(n, dtype=torch.long, device=x0.device)
    if n == 0:
        return x0.clone(), steps_taken
    ball = Ball(x0, eps)

    with attack_mode(model, train_mode=train_mode), torch.enable_grad():
        precision_ctx = autocast(precision, x0.device)
        target = None
        if loss == "kl":
            with torch.no_grad(), precision_ctx:
                target = model(x0).float()
        if start == "uniform":
            x_start = ball.random_start(generator)
        elif start == "normal":
            x_start = ball.project(x0 + NORMAL_START_STD * gaussian_like(x0, generator))
        else:
            x_start = x0

        def objective(logits: Tensor) -> Tensor:
            if loss == "ce":
                return F.cross_entropy(logits.float(), y, reduction="sum")
            return kl_divergence(target, logits, reduction="sum")

        # FAT's early stop costs one sync per step; its saving is stopping early.
        return steepest_ascent(
            model, x_start, ball, objective, steps=steps, step_size=step_size, precision_ctx=precision_ctx,
            fat_tau=tau, labels=y,
        )
