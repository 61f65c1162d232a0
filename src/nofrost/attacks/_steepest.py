"""The one steepest-ascent step loop behind ``pgd``, ``pgd-t``, ``bim``, ``mifgsm``, ``cw-linf``
and the training-time inner maximisations (TRADES' KL attack, FAT's early-stopped PGD).

Each of those is this loop with its own objective, start, ball and options:

    x_{t+1} = P(x_t + α · s(d_t)),   d_t = ∇ₓ objective(f(x_t))

with ``P`` the ball's projection and ``s`` its steepest-ascent direction: ``sign`` under ℓ∞
(the sign-gradient PGD of Madry et al.), ``d / ‖d‖₂`` under ℓ2.

or, with ``momentum`` μ (MI-FGSM, Dong et al. 2018), ``d_t = μ · d_{t−1} + g_t / ‖g_t‖₁``.
``objective(logits)`` is a scalar the loop *ascends* (a summed per-example loss, so each
example's gradient is independent of the batch); an attack that descends a loss passes its
negative. With ``fat_tau`` (FAT, Zhang et al. 2020, Algorithm 1) an example that is
misclassified with no budget left stops where it is; one misclassified with budget left spends
a unit and steps on (every budget starts at ``fat_tau``).

The caller owns validation, ``attack_mode``, the start and the ball; the loop has no host
synchronisation unless ``fat_tau`` is set (one per step, to stop when every example has).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import Tensor, nn

from nofrost.attacks._common import expected_input_gradient
from nofrost.attacks._core import Ball


def steepest_ascent(
    model: nn.Module,
    start: Tensor,
    ball: Ball,
    objective: Callable[[Tensor], Tensor],
    *,
    steps: int,
    step_size: float,
    precision_ctx: contextlib.AbstractContextManager | None = None,
    momentum: float | None = None,
    fat_tau: int | None = None,
    labels: Tensor | None = None,
    on_first_logits: Callable[[Tensor], None] | None = None,
    eot_iter: int = 1,
) -> tuple[Tensor, Tensor]:
    """Run the loop from ``start`` (inside ``ball``); returns ``(x_adv, steps_taken)``.

    ``labels`` are needed by ``fat_tau`` (misclassified means argmax ≠ label);
    ``on_first_logits`` sees the logits of the first forward pass (to validate the labels
    against their width before the objective indexes with them). ``eot_iter`` > 1 averages each
    step's gradient over that many forward/backward passes (Expectation over Transformation,
    Athalye et al. 2018, for randomized models).
    """
    precision_ctx = precision_ctx if precision_ctx is not None else contextlib.nullcontext()
    x_adv = start.detach()
    n = x_adv.shape[0]
    expand = (-1,) + (1,) * (x_adv.dim() - 1)
    if fat_tau is None:  # every example takes every step: nothing to track in the loop
        steps_taken = torch.full((n,), steps, dtype=torch.long, device=x_adv.device)
    else:
        steps_taken = torch.zeros(n, dtype=torch.long, device=x_adv.device)
        active = torch.ones(n, dtype=torch.bool, device=x_adv.device)
        budget = torch.full((n,), fat_tau, dtype=torch.long, device=x_adv.device)
    velocity = torch.zeros_like(x_adv) if momentum is not None else None
    for step in range(steps):  # hot loop: no host synchronisation unless fat_tau
        x_adv.requires_grad_(True)
        with precision_ctx:
            logits = model(x_adv)
        if step == 0 and on_first_logits is not None:
            on_first_logits(logits)
        if fat_tau is not None:
            assert labels is not None, "fat_tau needs the labels"
            wrong = logits.argmax(dim=1) != labels
            active = active & ~(wrong & (budget == 0))
            budget = budget - (active & wrong).long()
            if not bool(active.any()):
                break
        _, _, grad = expected_input_gradient(model, x_adv, objective, precision_ctx, eot_iter, logits)
        if velocity is not None:
            # Per-example ℓ1 normalisation; an all-zero gradient stays zero (no 0/0).
            l1 = grad.abs().flatten(1).sum(1).clamp_min(torch.finfo(grad.dtype).tiny)
            velocity = momentum * velocity + grad / l1.view(expand)
            grad = velocity
        stepped = ball.project(x_adv.detach() + step_size * ball.steepest(grad))
        if fat_tau is None:
            x_adv = stepped
        else:
            x_adv = torch.where(active.view(expand), stepped, x_adv.detach())
            steps_taken += active.long()
    return x_adv.detach(), steps_taken
