"""FAB-T (ℓ∞ and ℓ2): the targeted Fast Adaptive Boundary attack, as run by standard AutoAttack.

F. Croce, M. Hein, "Minimally distorted adversarial examples with a fast adaptive boundary
attack", ICML 2020. FAB looks for the *smallest* perturbation that changes the decision. At
the current point ``x_k`` it linearises the boundary between the label ``y`` and a target
class ``t``, ``{z : f(x_k) + ∇f(x_k)·(z − x_k) = 0}`` with ``f = z_t − z_y``, and computes
the minimal steps ``d_k`` and ``d_0`` in the threat model's norm ‖·‖ that move ``x_k`` and the
original ``x_0`` onto that hyperplane inside the box [0, 1] (:func:`linf_hyperplane_step`,
:func:`l2_hyperplane_step`). The next point is the convex combination

    ``x_{k+1} = clip((1 − α)(x_k + η d_k) + α (x_0 + η d_0))``,
    ``α = min(‖d_k‖ / (‖d_k‖ + ‖d_0‖), α_max)``,

with overshoot η = 1.05 and α_max = 0.1 (the bias toward ``x_0`` keeps the perturbation
small). Whenever ``x_{k+1}`` is misclassified it is recorded if it is closer to ``x_0`` than
the best so far, and the iterate moves back toward ``x_0``: ``x_{k+1} ← x_0 + β (x_{k+1} −
x_0)``, β = 0.9. All distances are measured in the threat model's norm. The first run of
each target starts at ``x_0`` (deterministic), further restarts at a random point at distance
ε/2 (ℓ∞: a direction uniform in [−1, 1]^D, ℓ2: a Gaussian direction), clipped to [0, 1].

The ℓ2 version follows the authors' code (``FABAttack`` in AutoAttack's ``fab_base.py`` with
``norm='L2'``, ``projection_l2`` in ``fab_projections.py``): it differs from ℓ∞ only in the
hyperplane step, the norm of ``α`` and the distances, and the restarts' direction.

As in standard AutoAttack (``fab-t``: 9 targets, 100 iterations, 1 restart), the targets are
the classes with the highest clean logits after the label, one after the other, each on the
examples not yet broken, and an example is broken only if FAB found a misclassified point
within ε. The attack contract asks for a point in the ε-ball either way, so the returned
point is FAB's closest adversarial if it lies within ε and otherwise that point (or, if FAB
found none, its last iterate) projected onto the ε-ball. With ``early_stop`` (default) an
example leaves the attack as soon as it is broken; FAB would go on shrinking the
perturbation, which cannot change whether it is broken at ε.
"""

from __future__ import annotations

import numbers
from functools import partial

import numpy as np
import torch
from torch import Tensor, nn

from nofrost.attacks._common import (
    autocast,
    check_positive_int,
    input_gradient,
    uniform_like,
)
from nofrost.attacks._core import Ball, lp_norm, run_on_correct
from nofrost.attacks._registry import Setup, register_attack
from nofrost.attacks.apgd import check_bool, check_class_count, sync_period, top_targets

__all__ = ["fab_on_correct", "fab_targeted_attack", "l2_hyperplane_step", "linf_hyperplane_step"]


def _argsort_rows(a: Tensor) -> Tensor:
    # On CPU numpy's vectorised argsort is several times faster than torch's; the order of ties
    # does not matter to the caller.
    if a.device.type == "cpu" and a.dtype in (torch.float32, torch.float64):
        return torch.from_numpy(np.argsort(a.detach().numpy(), axis=1))
    return a.argsort(dim=1)


#: Fixed-point iterations :func:`_water_level` tries before it sorts the rows still unsettled.
_WATER_ITERATIONS = 8


def _water_level(breaks: Tensor, weights: Tensor, need: Tensor) -> Tensor:
    """Row-wise smallest ``λ ≥ 0`` with ``h(λ) = Σ_i weights_i min(λ, breaks_i) = need``.

    ``breaks``, ``weights``: (M, D), nonnegative; ``need``: (M,), nonnegative. ``h`` is
    nondecreasing, concave and piecewise linear with kinks at the ``breaks``. Where ``need >
    h(max breaks)``, i.e. no ``λ`` suffices, the result is ``max breaks`` (every
    ``min(λ, breaks_i)`` saturated).

    The iteration ``λ ← (need − Σ_{breaks_i < λ} weights_i breaks_i) / Σ_{breaks_i ≥ λ}
    weights_i`` from ``λ = need / Σ_i weights_i`` solves ``h = need`` on the segment that ``λ``
    assumes: it never passes the answer (``h`` lies below each segment's line, by concavity),
    rises, and is exact as soon as no kink lies between two iterates. On FAB's rows that takes
    two to four passes over the row, far cheaper than sorting it (:func:`_water_level_sorted`),
    which solves the rows still unsettled after :data:`_WATER_ITERATIONS` and those no ``λ``
    satisfies.
    """
    tiny = torch.finfo(breaks.dtype).tiny
    weighted = weights * breaks
    lam = need / weights.sum(dim=1).clamp_min(tiny)
    settled = torch.zeros_like(need, dtype=torch.bool)
    last_count = last_rest = None
    for _ in range(_WATER_ITERATIONS + 1):
        # 1 where a kink lies below λ, else 0 (the sign of λ − break, without a bool mask,
        # which costs two passes); the weight above λ is summed directly, not as a difference,
        # which would cancel when little is left there.
        below = (lam[:, None] - breaks).sign_().clamp_min_(0)
        count = below.sum(dim=1)
        wr_below = torch.linalg.vecdot(below, weighted)
        rest = torch.linalg.vecdot(below.neg_().add_(1), weights)
        if last_count is not None:
            # No kink passed: the last λ solved h = need on its own segment. (A count that fell
            # can only come from rounding in the last bit of λ.)
            settled = settled | ((count <= last_count) & (last_rest > 0))
            if bool(settled.all()):  # one host synchronisation per pass
                return lam.clamp_min(0)
        lam = torch.where(settled, lam, (need - wr_below) / rest.clamp_min(tiny))
        last_count, last_rest = count, rest
    rows = (~settled).nonzero().squeeze(1)
    lam[rows] = _water_level_sorted(breaks[rows], weights[rows], need[rows])
    return lam.clamp_min(0)


def _water_level_sorted(breaks: Tensor, weights: Tensor, need: Tensor) -> Tensor:
    """:func:`_water_level` by one sort of each row: ``h`` at every kink (prefix sums), then
    the segment holding ``need`` (one ``searchsorted``), on which ``λ`` is solved exactly."""
    size = breaks.shape[1]
    order = _argsort_rows(breaks)
    r_sorted = breaks.gather(1, order)
    w_sorted = weights.gather(1, order)
    weighted = w_sorted * r_sorted
    before = weighted.cumsum(dim=1) - weighted  # Σ_{i<j} weight_i break_i  (sorted order)
    from_here = w_sorted.flip(1).cumsum(dim=1).flip(1)  # Σ_{i≥j} weight_i
    h_at = (before + r_sorted * from_here).cummax(dim=1).values  # h(break_j), made monotone
    j = torch.searchsorted(h_at, need[:, None].contiguous()).squeeze(1)
    feasible = j < size
    jc = j.clamp(max=size - 1)[:, None]
    lam = (need - before.gather(1, jc).squeeze(1)) / from_here.gather(1, jc).squeeze(1).clamp_min(
        torch.finfo(breaks.dtype).tiny
    )
    return torch.where(feasible, lam.clamp_min(0), r_sorted[:, -1])


def _toward_hyperplane(t: Tensor, w: Tensor, b: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(|c|, v, room)``: the change ``|c| = |b − w·t|`` that ``v·δ`` must make, the signed
    normal ``v = sign(c) w`` (moving along ``v`` makes it) and each coordinate's room to the
    box bound in the direction of ``v_i`` (to 1 if ``v_i > 0``, to 0 if ``v_i < 0``)."""
    c = b - (w * t).sum(dim=1)
    v = torch.where(c[:, None] >= 0, w, -w)
    room = torch.where(v > 0, 1 - t, t).clamp_min(0)
    return c.abs(), v, room


def linf_hyperplane_step(t: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """Row-wise minimal-ℓ∞ ``δ`` with ``w·(t + δ) = b`` and ``t + δ ∈ [0, 1]``.

    ``t``, ``w``: (M, D); ``b``: (M,). Let ``c = b − w·t`` (the change of ``w·δ`` needed) and
    ``v = sign(c) w``. Moving coordinate ``i`` by at most ``λ`` in the direction of ``v_i``
    (as far as the box allows: ``r_i`` = distance to 1 if ``v_i > 0``, to 0 if ``v_i < 0``)
    raises ``v·δ`` by ``h(λ) = Σ_i |v_i| min(λ, r_i)``, a nondecreasing piecewise-linear
    function. The answer is ``δ_i = sign(v_i) min(λ*, r_i)`` for the smallest ``λ*`` with
    ``h(λ*) = |c|``, found exactly (:func:`_water_level`); where no ``λ`` suffices (the
    hyperplane misses the box) every coordinate moves to its bound.
    """
    need, v, room = _toward_hyperplane(t, w, b)
    lam = _water_level(room, v.abs(), need)
    return v.sign() * torch.minimum(room, lam[:, None])


#: Normal components below this size count as zero in :func:`l2_hyperplane_step` (those
#: coordinates never move), as in the authors' ``projection_l2``.
_L2_NEGLIGIBLE = 1e-8


def l2_hyperplane_step(t: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """Row-wise minimal-ℓ2 ``δ`` with ``w·(t + δ) = b`` and ``t + δ ∈ [0, 1]``.

    ``t``, ``w``: (M, D); ``b``: (M,). With ``c``, ``v = sign(c) w`` and the room ``r_i`` to
    the box bound as in :func:`linf_hyperplane_step`, the minimiser of ``‖δ‖₂`` (KKT: ``δ`` is
    a multiple of ``v`` clipped to the box) is ``δ_i = sign(v_i) min(λ* |w_i|, r_i)`` for the
    smallest ``λ*`` with ``Σ_i |w_i| min(λ* |w_i|, r_i) = Σ_i w_i² min(λ*, r_i/|w_i|) = |c|``:
    the same piecewise-linear search, with kinks ``r_i/|w_i|`` and weights ``w_i²``. Where the
    hyperplane misses the box every coordinate moves to its bound, and coordinates with
    ``|w_i| ≤ 1e-8`` stay where they are (both as ``projection_l2`` in AutoAttack's
    ``fab_projections.py`` does).
    """
    need, v, room = _toward_hyperplane(t, w, b)
    scale = v.abs()
    moves = scale > _L2_NEGLIGIBLE
    scale = torch.where(moves, scale, torch.zeros_like(scale))
    breaks = torch.where(moves, room / torch.where(moves, scale, torch.ones_like(scale)), scale)
    lam = _water_level(breaks, scale * scale, need)
    return v.sign() * torch.minimum(room, lam[:, None] * scale)


_HYPERPLANE_STEPS = {"linf": linf_hyperplane_step, "l2": l2_hyperplane_step}


def _fab_run(
    model: nn.Module,
    x0: Tensor,
    y: Tensor,
    target: Tensor,
    ball: Ball,
    *,
    steps: int,
    alpha_max: float,
    eta: float,
    beta: float,
    random_start: bool,
    early_stop: bool,
    generator: torch.Generator | None,
    precision_ctx,
) -> tuple[Tensor, Tensor]:
    """One targeted FAB run; returns ``(x_adv, broken)`` with ``x_adv`` in the ε-ball.

    ``ball`` is the ε-ball of ``x0``; its norm picks the hyperplane step and measures every
    distance (the steps' sizes in ``α``, the closest adversarial, the final projection).
    """
    n = x0.shape[0]
    eps = ball.eps
    hyperplane_step = _HYPERPLANE_STEPS[ball.norm]
    view = (-1,) + (1,) * (x0.dim() - 1)
    x_out = torch.empty_like(x0)
    broken_out = torch.zeros(n, dtype=torch.bool, device=x0.device)
    if random_start and ball.norm == "linf":
        u = uniform_like(x0, -1.0, 1.0, generator)
        u = u / u.flatten(1).abs().amax(dim=1).clamp_min(1e-12).view(view)
        x1 = torch.clamp(x0 + 0.5 * eps * u, 0.0, 1.0)
    elif random_start:
        # fab_base.py: a Gaussian direction scaled to ℓ2 length min(ε, best)/2 with best = 1e10
        # (the run has found nothing yet), i.e. ε/2, clipped to [0, 1].
        x1 = ball.surface_point(generator, 0.5)
    else:
        x1 = x0
    live = ball  # the ball of the rows still attacked
    best = x0  # the closest misclassified point found (where dist < inf)
    dist_best = torch.full((n,), float("inf"), dtype=x0.dtype, device=x0.device)
    rows = torch.arange(n, device=x0.device)
    period = sync_period(x0.device)

    for i in range(steps):
        if early_stop and i % period == 0:
            done = dist_best <= eps
            keep = (~done).nonzero().squeeze(1)  # the only host synchronisation
            if keep.numel() < rows.numel():
                gone = done.nonzero().squeeze(1)
                x_out[rows[gone]] = best[gone]
                broken_out[rows[gone]] = True
                if keep.numel() == 0:
                    return ball.project(x_out), broken_out
                (x0, x1, best, dist_best, y, target, rows) = (
                    t[keep] for t in (x0, x1, best, dist_best, y, target, rows)
                )
                live = live[keep]
        m = x0.shape[0]
        # ---- linearise f = z_t − z_y at x1 -------------------------------------------------
        xg = x1.detach().requires_grad_(True)
        with precision_ctx:
            logits = model(xg)
        lf = logits.float()
        f = lf.gather(1, target[:, None]).squeeze(1) - lf.gather(1, y[:, None]).squeeze(1)
        w = input_gradient(f.sum(), xg).flatten(1)
        b = (w * x1.flatten(1)).sum(dim=1) - f.detach().to(w.dtype)
        # ---- minimal steps of x1 and x0 onto the hyperplane, combined ----------------------
        d = hyperplane_step(
            torch.cat([x1.flatten(1), x0.flatten(1)]), torch.cat([w, w]), torch.cat([b, b])
        )
        size = lp_norm(d, ball.norm).clamp_min(1e-8)
        alpha = (size[:m] / (size[:m] + size[m:])).clamp(0.0, alpha_max).view(view)
        d1 = d[:m].view_as(x1)
        d0 = d[m:].view_as(x1)
        x1 = torch.clamp((x1 + eta * d1) * (1 - alpha) + (x0 + eta * d0) * alpha, 0.0, 1.0)
        # ---- record misclassified points, step back toward x0 -------------------------------
        with torch.no_grad(), precision_ctx:
            is_adv = model(x1).argmax(dim=1) != y
        dist = live.distance(x1)
        closer = is_adv & (dist < dist_best)
        best = torch.where(closer.view(view), x1, best)
        dist_best = torch.where(closer, dist, dist_best)
        x1 = torch.where(is_adv.view(view), x0 + beta * (x1 - x0), x1)

    found = (dist_best < float("inf")).view(view)
    x_out[rows] = torch.where(found, best, x1)
    broken_out[rows] = dist_best <= eps
    return ball.project(x_out), broken_out


def fab_on_correct(
    model: nn.Module,
    x0: Tensor,
    y: Tensor,
    ball: Ball,
    targets: Tensor,
    *,
    steps: int,
    restarts: int,
    alpha_max: float,
    eta: float,
    beta: float,
    early_stop: bool,
    generator: torch.Generator | None,
    precision_ctx=None,
) -> tuple[Tensor, Tensor]:
    """FAB-T on examples the model classifies correctly; returns ``(x_adv, broken)``.

    ``targets`` is (N, k): one run per column (and restart), in order, on the examples not
    broken yet. The options are :func:`fab_targeted_attack`'s (whose defaults are the ones of
    standard AutoAttack). No validation here; the caller holds :func:`attack_mode`. Unbroken
    rows get the point of their first run.
    """
    if precision_ctx is None:
        precision_ctx = autocast("fp32", x0.device)
    n = x0.shape[0]
    view = (-1,) + (1,) * (x0.dim() - 1)
    x_adv = x0.clone()
    broken = torch.zeros(n, dtype=torch.bool, device=x0.device)
    first = True
    for column in range(targets.shape[1]):
        for restart in range(restarts):
            active = (~broken).nonzero().squeeze(1)  # one synchronisation per run
            if active.numel() == 0:
                return x_adv, broken
            xs, bs = _fab_run(
                model,
                x0[active],
                y[active],
                targets[active, column],
                ball[active],
                steps=steps,
                alpha_max=alpha_max,
                eta=eta,
                beta=beta,
                random_start=restart > 0,
                early_stop=early_stop,
                generator=generator,
                precision_ctx=precision_ctx,
            )
            if first:
                x_adv[active] = xs
            else:
                x_adv[active] = torch.where(bs.view(view), xs, x_adv[active])
            broken[active] = bs
            first = False
    return x_adv, broken


def check_fab_params(alpha_max: object, eta: object, beta: object) -> tuple[float, float, float]:
    def number(value: object, what: str, low: float, high: float) -> float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"{what} must be a number, got {value!r}")
        value = float(value)
        if not low <= value <= high:
            raise ValueError(f"{what} must lie in [{low}, {high}], got {value!r}")
        return value

    return (
        number(alpha_max, "alpha_max", 0.0, 1.0),
        number(eta, "eta", 1.0, 10.0),
        number(beta, "beta", 0.0, 1.0),
    )


def _fab_rows(
    model: nn.Module, x0: Tensor, y: Tensor, ball: Ball, clean_logits: Tensor, num_classes: int,
    precision_ctx, *, steps: int, restarts: int, n_target_classes: int, alpha_max: float, eta: float,
    beta: float, early_stop: bool, generator: torch.Generator | None,
) -> Tensor:
    """FAB-T on correctly classified rows, toward their top ``n_target_classes`` classes."""
    x_rows, _ = fab_on_correct(
        model, x0, y, ball, top_targets(clean_logits, y, n_target_classes), steps=steps, restarts=restarts,
        alpha_max=alpha_max, eta=eta, beta=beta, early_stop=early_stop, generator=generator,
        precision_ctx=precision_ctx,
    )
    return x_rows


@register_attack("fab-t", display="FAB-T", paper_budget=20, norms=("linf", "l2"), on_correct=_fab_rows, bf16=False)
def fab_targeted_attack(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    setup: Setup,
    *,
    steps: int = 100,
    restarts: int = 1,
    n_target_classes: int = 9,
    alpha_max: float = 0.1,
    eta: float = 1.05,
    beta: float = 0.9,
    early_stop: bool = True,
) -> Tensor:
    """FAB-T under ℓ∞ or ℓ2 (Croce & Hein, ICML 2020), see the module docstring; returns ``x_adv``.

    Args:
        model, x, y: as for every attack (see :mod:`nofrost.attacks`).
        eps: radius of the ball: ℓ∞ as a fraction of the pixel range (8/255, not 8), ℓ2 as
            the length of the perturbation (0.5 on CIFAR-10); an example is broken if FAB
            finds a misclassified point within ``eps``.
        steps: FAB iterations per target and restart (``n_iter``, 100 in AutoAttack).
        restarts: runs per target; the first starts at ``x``, the others at random points.
        n_target_classes: targets per example (the most likely classes other than ``y``);
            needs ``K ≥ n_target_classes + 1`` classes.
        alpha_max, eta, beta: FAB's bias toward ``x``, overshoot and backward step.
        early_stop: stop on an example once it is broken (does not change which are).
        generator, precision, num_classes, norm: as for every attack (:class:`Setup`); the
            generator draws the random restarts.

    Returns:
        ``x_adv`` with the shape and dtype of ``x``, in [0, 1] and within ``eps`` of ``x``
        (ℓ2: up to the rounding of the projection); examples the model misclassifies already
        are returned unchanged.
    """
    steps = check_positive_int(steps, "steps")
    restarts = check_positive_int(restarts, "restarts")
    n_target_classes = check_positive_int(n_target_classes, "n_target_classes")
    alpha_max, eta, beta = check_fab_params(alpha_max, eta, beta)
    early_stop = check_bool(early_stop, "early_stop")
    check_classes = partial(check_class_count, loss="ce", n_target_classes=n_target_classes, name="fab-t")
    if setup.num_classes is not None:
        check_classes(setup.num_classes)
    return run_on_correct(
        model, x, y, eps, setup.precision, partial(
            _fab_rows, model, steps=steps, restarts=restarts, n_target_classes=n_target_classes,
            alpha_max=alpha_max, eta=eta, beta=beta, early_stop=early_stop, generator=setup.generator,
        ), norm=setup.norm, check_classes=check_classes,
    )  # fmt: skip
