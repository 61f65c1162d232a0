"""The attack core: threat models as values, and the wrapper every attack on correct examples uses.

:class:`Ball` is the ε-ball of ℓ∞ or ℓ2 around a batch, intersected with [0, 1].

Every attack that supports more than one norm works through a :class:`Ball` instead of
branching on the norm: the ball projects, measures distances, gives the steepest-ascent
direction of a gradient and draws random starting points. So PGD under ℓ2 is PGD under ℓ∞
with another ball, as in AutoAttack's ``autopgd_base.py``, whose ℓ2 formulas these follow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from nofrost.attacks._common import (
    attack_mode,
    autocast,
    check_logits_and_labels,
    check_norm,
    gaussian_like,
    linf_bounds,
    uniform_like,
)

# Added to norms before dividing by them, as in the authors' AutoAttack code (so a zero
# gradient or a zero perturbation stays zero instead of becoming NaN).
_TINY = 1e-12


def lp_norm(v: Tensor, norm: str) -> Tensor:
    """Per-example ℓ∞ or ℓ2 norm of ``v`` (N, ...) as an (N,) tensor."""
    flat = v.flatten(1)
    return flat.abs().amax(dim=1) if norm == "linf" else flat.norm(dim=1)


class Ball:
    """The set ``{z : ‖z − x‖ ≤ ε} ∩ [0, 1]^D`` of each example of the batch ``x``.

    ``ball[rows]`` is the ball of those rows (attacks drop the examples they have broken).
    Under ℓ∞ the per-pixel bounds ``lo``/``hi`` are exact (:func:`linf_bounds`), so
    ``‖z − x‖∞ ≤ ε`` holds exactly after :meth:`project`; under ℓ2 it holds up to the
    rounding of one division (relative 1e-6 in fp32).
    """

    def __init__(self, x: Tensor, eps: float, norm: str = "linf") -> None:
        self.x = x.detach()
        self.eps = float(eps)
        self.norm = check_norm(norm)
        self.lo, self.hi = linf_bounds(self.x, self.eps) if norm == "linf" else (None, None)
        self._view = (-1,) + (1,) * (self.x.dim() - 1)

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, rows: Tensor) -> Ball:
        sub = object.__new__(Ball)
        sub.x, sub.eps, sub.norm, sub._view = self.x[rows], self.eps, self.norm, self._view
        sub.lo = self.lo[rows] if self.lo is not None else None
        sub.hi = self.hi[rows] if self.hi is not None else None
        return sub

    def distance(self, z: Tensor) -> Tensor:
        """Per-example ``‖z − x‖`` (N,)."""
        return lp_norm(z - self.x, self.norm)

    def normalize(self, v: Tensor) -> Tensor:
        """``v / (‖v‖ + 1e-12)`` per example: unit norm (or zero)."""
        return v / (lp_norm(v, self.norm) + _TINY).view(self._view)

    def project(self, z: Tensor) -> Tensor:
        """The point of the ball nearest to ``z`` (ℓ2: scale the perturbation down to ε, then
        clip to [0, 1], which only shortens it)."""
        if self.norm == "linf":
            return torch.clamp(z, min=self.lo, max=self.hi)
        delta = z - self.x
        scale = (self.eps / (lp_norm(delta, "l2") + _TINY)).clamp(max=1.0)
        return torch.clamp(self.x + delta * scale.view(self._view), 0.0, 1.0)

    def steepest(self, grad: Tensor) -> Tensor:
        """The unit-norm direction ``d`` that maximises ``⟨grad, d⟩``: ``sign(grad)`` under ℓ∞,
        ``grad / ‖grad‖₂`` under ℓ2."""
        return grad.sign() if self.norm == "linf" else self.normalize(grad)

    def random_start(self, generator: torch.Generator | None) -> Tensor:
        """PGD's random start: ℓ∞ uniform in the ε-box (Madry et al.; advertorch, which the
        NoFrost reference code ran); ℓ2 a Gaussian direction scaled to length ε (AutoAttack's
        APGD and the robustness library), projected."""
        if self.norm == "linf":
            return self.project(self.x + uniform_like(self.x, -self.eps, self.eps, generator))
        return self.surface_point(generator)

    def surface_point(self, generator: torch.Generator | None, scale: float = 1.0) -> Tensor:
        """A random point at distance ``scale · ε`` before clipping to [0, 1]: a direction
        uniform in [−1, 1]^D (ℓ∞) or Gaussian (ℓ2), normalised (APGD's and FAB's starts)."""
        noise = (
            uniform_like(self.x, -1.0, 1.0, generator)
            if self.norm == "linf"
            else gaussian_like(self.x, generator)
        )
        return self.project(self.x + scale * self.eps * self.normalize(noise))


def project_linf(x_adv: Tensor, x: Tensor, eps: float) -> Tensor:
    """Project ``x_adv`` onto the ℓ∞ ε-ball around ``x`` intersected with [0, 1]."""
    return Ball(x, eps).project(x_adv)


def run_on_correct(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    precision: str,
    attack_rows: Callable[..., Tensor],
    *,
    norm: str = "linf",
    check_classes: Callable[[int], Any] | None = None,
) -> Tensor:
    """The setup and teardown of an attack that only attacks the examples the model gets right.

    Holds :func:`attack_mode` and autocast, runs the clean forward pass and checks the labels
    (and ``check_classes(num_classes)``), returns ``x`` itself for ε = 0 or an empty batch, and
    calls ``attack_rows(x, y, ball, clean_logits, num_classes, precision_ctx)`` on the
    correctly classified rows only (``ball`` their :class:`Ball`),
    scattering the points it returns back. Misclassified examples are returned unchanged: they
    are adversarial as they are.
    """
    x0 = x.detach()
    if x0.shape[0] == 0:
        return x0.clone()
    with attack_mode(model), torch.enable_grad():
        precision_ctx = autocast(precision, x0.device)
        with torch.no_grad(), precision_ctx:
            logits = model(x0)
        num_classes = check_logits_and_labels(logits, y)
        if check_classes is not None:
            check_classes(num_classes)
        x_adv = x0.clone()
        if eps == 0:
            return x_adv
        correct = (logits.argmax(dim=1) == y).nonzero().squeeze(1)
        if correct.numel() == 0:
            return x_adv
        ball = Ball(x0[correct], eps, norm)
        x_adv[correct] = attack_rows(x0[correct], y[correct], ball, logits[correct], num_classes, precision_ctx)
    return x_adv
