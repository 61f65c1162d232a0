"""Boundary thickness T(x) (NoFrost paper, Sec. 4.3, after Yang et al., NeurIPS 2020)."""

from __future__ import annotations

import torch
from torch import Tensor

from nofrost.attacks._common import random_targets
from nofrost.evaluate.metrics._registry import MetricBatch, register_metric


def thickness_along_segment(
    batch: MetricBatch, x_star: Tensor, j: Tensor, *, alpha: float, beta: float, points: int
) -> Tensor:
    """``‖x − x*‖₂ · (1/points) · #{t_k : α < g_ij(t_k x + (1 − t_k) x*) < β}`` per example,
    with ``t_k`` = ``points`` evenly spaced values from 0 to 1 (both ends included),
    ``g_ij = p_i − p_j`` and ``i`` the prediction on ``x``."""
    i = batch.predicted
    t = torch.linspace(0.0, 1.0, points, device=batch.x.device, dtype=batch.x.dtype)
    view = (1, points) + (1,) * (batch.x.dim() - 1)
    # A few segments at a time, so that one forward pass holds about a batch of images.
    rows = max(1, len(batch.x) // points)
    inside = []
    for start in range(0, len(batch.x), rows):
        x, xs = batch.x[start : start + rows], x_star[start : start + rows]
        segment = t.view(view) * x[:, None] + (1 - t.view(view)) * xs[:, None]  # (rows, points, C, H, W)
        probs = torch.softmax(batch.logits(segment.flatten(0, 1)), dim=1).view(len(x), points, -1)
        gap = (probs.gather(2, i[start : start + rows, None, None].expand(-1, points, 1))
               - probs.gather(2, j[start : start + rows, None, None].expand(-1, points, 1))).squeeze(2)
        inside.append(((gap > alpha) & (gap < beta)).float().mean(dim=1))
    return (batch.x - x_star).flatten(1).float().norm(dim=1) * torch.cat(inside)


@register_metric("thickness", display="T(x)", higher_is_better=True, needs=("clean_logits", "adversarial"))
def boundary_thickness(
    batch: MetricBatch, *, alpha: float = 0.0, beta: float = 0.75, eps: float = 1.0, step_size: float = 0.2,
    steps: int = 20, points: int = 128,
) -> Tensor:
    """Boundary thickness T(x) = ‖x − x*‖₂ ∫₀¹ 1{α < g_ij(t x + (1−t) x*) < β} dt, x* from targeted ℓ2 PGD.

    As the NoFrost paper (Sec. 4.3, α = 0, β = 0.75) defines it after Yang et al. (2020):
    ``g_ij = p_i − p_j`` (softmax probabilities), ``i`` and ``j`` the predicted classes of
    ``x`` and ``x*``. What is implemented, following Yang et al.'s measurement code
    (github.com/nsfzyzz/boundary_thickness, ``measure_thickness.py``):

    * ``x*``: targeted PGD under ℓ2 toward a class ``j`` drawn uniformly among the others, with
      no random start, ``steps`` = 20 steps of length ``step_size`` = 0.2 along the normalised
      gradient, projected onto the ℓ2 ball of radius ``eps`` = 1.0 (their settings, given for
      normalised CIFAR-10 inputs as 5.0 and 1.0 with a normalisation factor of 5, i.e. 1.0 and
      0.2 in [0, 1] pixels). The class it is drawn away from is the model's prediction (they
      use the label; the two agree wherever the model is right), so misclassified images are
      measured too.
    * The integral: the fraction of ``points`` = 128 evenly spaced points of the segment, both
      ends included, where ``α < g_ij < β``.
    * ``j`` is the attack's target, as in their code. The NoFrost paper writes ``j`` as the
      prediction on ``x*``: the same class wherever the attack succeeded; where it failed, that
      reading gives ``j = i``, ``g ≡ 0`` and T(x) = 0, mixing the attack's success rate into
      the thickness.

    Larger is thicker.
    """
    if not alpha < beta:
        raise ValueError(f"thickness: alpha must be below beta, got alpha={alpha}, beta={beta}")
    if isinstance(points, bool) or not isinstance(points, int) or points < 2:
        raise ValueError(f"thickness: points must be an integer ≥ 2, got {points!r}")
    j = random_targets(batch.predicted, batch.clean_logits.shape[1], batch.generator("thickness targets"))
    x_star = batch.adversarial("pgd-t", eps=eps, norm="l2", steps=steps, step_size=step_size, random_start=False,
                               target=j)
    return thickness_along_segment(batch, x_star, j, alpha=alpha, beta=beta, points=points)
