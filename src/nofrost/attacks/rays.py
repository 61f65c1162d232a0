"""ℓ∞ RayS: a hard-label (decision-based) black-box attack by ray searching.

J. Chen, Q. Gu, "RayS: A Ray Searching Method for Hard-label Adversarial Attack", KDD 2020.

RayS only sees the predicted label. It searches over *sign directions* v ∈ {−1, +1}^d: the
ray ``x + r·v`` (clipped to [0, 1]) leaves the ℓ∞ ball of radius r exactly at r, so the ℓ∞
distance to the decision boundary along v is the smallest r at which the ray is misclassified.
Starting from v = (1, …, 1) the attack flips blocks of coordinates hierarchically (first all
coordinates, then each half, each quarter, …, down to single coordinates, then again), and
for every flipped direction

1. asks whether the ray is already misclassified at the current best radius r* (one query;
   most directions fail here and cost nothing more), and if so
2. binary-searches the boundary radius along the new direction, which becomes the new best
   direction and radius.

For robustness evaluation (the paper's "early stopping"), an example is done as soon as its
best radius is at most ε: step 2 first queries the ray at ε itself and binary-searches only
between ε and r* if that fails. Every query at a radius ≤ ε is the point ``clip(x + ε·v)``
computed exactly inside the ε-ball, so the returned point is the one the model was queried
on. Images the model already misclassifies are returned unchanged (radius 0).

Departures from the reference code: the binary search's tolerance ``tol`` is in ℓ∞ units
(the reference uses 1e-3 on the ℓ2-normalised direction), the budget ``queries`` also caps the
binary search, and the clean images are classified first (one forward pass, not counted).
RayS is deterministic. Selecting the examples still searching synchronises with the host once
per query, which is inherent to per-example early stopping.
"""

from __future__ import annotations

import math
import numbers
from functools import partial

import torch
from torch import Tensor, nn

from nofrost.attacks._common import (
    check_positive_int,
)
from nofrost.attacks._core import Ball, run_on_correct
from nofrost.attacks._registry import Setup, register_attack

__all__ = ["rays_attack"]


def _check_tol(tol: object) -> float:
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real):
        raise ValueError(f"tol must be a positive number (an ℓ∞ radius), got {tol!r}")
    value = float(tol)
    if not (math.isfinite(value) and 0 < value <= 1):
        raise ValueError(f"tol must be a positive number ≤ 1 (an ℓ∞ radius), got {tol!r}")
    return value


def rays_attack(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    setup: Setup,
    *,
    queries: int = 10000,
    tol: float = 1e-3,
) -> Tensor:
    """ℓ∞ RayS (Chen & Gu, KDD 2020) with early stopping at ε; returns ``x_adv``.

    Args:
        model, x, y, eps: as for every attack (see :mod:`nofrost.attacks`). Only the model's
            predicted labels are used.
        queries: forward passes per example (default 10,000, the reference code's limit; the
            NoFrost paper evaluated with 400). The clean forward pass is not counted.
        tol: the binary search stops when the boundary radius is known to within ``tol``
            (ℓ∞ units; default 1e-3 ≈ 0.26/255).
        generator, precision, num_classes, norm: as for every attack (:class:`Setup`); RayS
            is deterministic and searches ℓ∞ sign directions (ℓ2 is refused with a message).

    Returns:
        ``x_adv = clip(x + ε·v)`` for the best direction v found: misclassified if a boundary
        radius ≤ ε was found, otherwise the point at radius ε along the best ray. Images the
        model already misclassifies are returned unchanged.
    """
    queries = check_positive_int(queries, "queries")
    tol = _check_tol(tol)
    return run_on_correct(
        model, x, y, eps, setup.precision, partial(_rays_rows, model, queries=queries, tol=tol), norm=setup.norm
    )


@torch.no_grad()
def _rays_rows(
    model: nn.Module, x0: Tensor, y: Tensor, ball: Ball, clean_logits: Tensor, num_classes: int,
    precision_ctx, *, queries: int, tol: float, generator: torch.Generator | None = None,
) -> Tensor:
    """RayS on correctly classified rows (``ball`` their ℓ∞ ε-ball); deterministic."""
    lo, hi, eps = ball.lo, ball.hi, ball.eps
    n = x0.shape[0]
    shape = x0.shape
    device = x0.device
    x_flat, lo_flat, hi_flat = x0.flatten(1), lo.flatten(1), hi.flatten(1)
    dim = x_flat.shape[1]
    fooled = torch.zeros(n, dtype=torch.bool, device=device)  # misclassified at radius ε

    def misclassified(index: Tensor, v: Tensor, radius: Tensor) -> Tensor:
        """One query per example: is ``clip(x + radius·v)`` misclassified?"""
        far = (x_flat[index] + radius[:, None].to(v.dtype) * v).clamp(0.0, 1.0)
        near = torch.where(v > 0, hi_flat[index], lo_flat[index])  # radius ≤ ε: the ball
        points = torch.where((radius > eps)[:, None], far, near)
        with precision_ctx:
            pred = model(points.view(-1, *shape[1:])).argmax(dim=1)
        used[index] += 1
        return pred != y[index]

    sign = torch.ones(n, dim, dtype=x0.dtype, device=device)  # best direction so far
    # Best boundary radius so far (inf: none found); rays past radius 1 are all the corner.
    best = torch.full((n,), math.inf, dtype=torch.float64, device=device)
    used = torch.zeros(n, dtype=torch.long, device=device)
    level, block = 0, 0
    while True:
        index = (~fooled & (used < queries)).nonzero().squeeze(1)  # host sync per attempt
        if index.numel() == 0:
            break
        # Hierarchical blocks: level l cuts the d coordinates into 2^l blocks of
        # ceil(d / 2^l); once blocks are single coordinates, cycle through them.
        size = -(-dim // 2**level)
        start, end = block * size, min(dim, (block + 1) * size)
        block += 1
        if block == 2**level or end == dim:
            level, block = (level + 1 if size > 1 else level), 0

        v = sign[index].clone()
        v[:, start:end] *= -1
        radius = best[index].clamp(max=1.0)
        # 1. Does the new ray cross the boundary before the best radius so far?
        hit = misclassified(index, v, radius)
        index, v, upper = index[hit], v[hit], radius[hit]
        # 2. Early stop: is it misclassified at ε already? (Skipped if upper ≤ ε: that
        #    query was step 1.)
        ask = (upper > eps) & (used[index] < queries)
        done = upper <= eps
        if bool(ask.any()):
            at_eps = torch.zeros_like(done)
            at_eps[ask] = misclassified(index[ask], v[ask], torch.full_like(upper[ask], eps))
            done |= at_eps
        upper = torch.where(done, torch.full_like(upper, eps), upper)
        # 3. Binary search for the boundary in (ε, upper].
        lower = torch.full_like(upper, eps)
        searching = ~done & (upper - lower > tol) & (used[index] < queries)
        while bool(searching.any()):
            s = searching.nonzero().squeeze(1)
            mid = (lower[s] + upper[s]) / 2
            crossed = misclassified(index[s], v[s], mid)
            upper[s] = torch.where(crossed, mid, upper[s])
            lower[s] = torch.where(crossed, lower[s], mid)
            searching = ~done & (upper - lower > tol) & (used[index] < queries)
        better = upper < best[index]
        index, v, upper, done = index[better], v[better], upper[better], done[better]
        best[index] = upper
        sign[index] = v
        fooled[index] |= done

    return torch.where(sign > 0, hi_flat, lo_flat).view(shape)


rays_attack = register_attack(
    "rays", kind="black-box", display="RayS", budget="queries", paper_budget=400, on_correct=_rays_rows,
    bf16=False,  # decides on hard labels near the boundary, as Square compares margins: unmeasured, kept fp32
)(rays_attack)
