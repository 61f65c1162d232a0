"""Auto-PGD under ℓ∞ or ℓ2: ``apgd-ce``, ``apgd-dlr`` and the targeted ``apgd-t``.

F. Croce, M. Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks", ICML 2020 (Sec. 3, Algorithm 1). APGD is PGD with momentum whose step
size adapts itself, so it has no step size to tune:

* start at a random point on the ε-sphere (a direction uniform in [−1, 1]^D under ℓ∞,
  Gaussian under ℓ2, scaled to norm ε, clipped to [0, 1]), with step size η = 2ε;
* step: ``z = P(x_k + η s(∇f(x_k)))``, ``x_{k+1} = P(x_k + α (z − x_k) + (1 − α)(x_k −
  x_{k−1}))`` with momentum α = 0.75 (α = 1 for the first step), P the projection onto the
  ε-ball ∩ [0, 1] and s the steepest-ascent direction (``sign`` under ℓ∞, ``g / ‖g‖₂`` under
  ℓ2), as in the authors' code for both norms;
* at the checkpoints ``w_j ≈ p_j · steps``, ``p_0 = 0, p_1 = 0.22, p_{j+1} = p_j +
  max(p_j − p_{j−1} − 0.03, 0.06)`` (:func:`apgd_checkpoints`), each example halves its step
  size and restarts from its best point so far if (1) at most ρ = 0.75 of its steps since
  the last checkpoint increased the loss, or (2) its step size was not halved at the last
  checkpoint and its best loss has not improved since;
* the result per example is a misclassified iterate if any iterate was misclassified (the
  attack stops on that example at that point; ``early_stop=False`` runs every step anyway),
  otherwise the iterate with the highest loss.

Losses: ``ce`` (cross-entropy), ``dlr`` (Difference of Logits Ratio, :func:`dlr_loss`,
invariant to shifting and rescaling the logits, needs ≥ 3 classes) and, for ``apgd-t``, the
targeted DLR loss (:func:`targeted_dlr_loss`, needs ≥ 4 classes) toward each of the
``n_target_classes`` classes the model ranks highest after the label, one run per target; an
example leaves the attack as soon as any run misclassifies it. Examples the model already
misclassifies are returned unchanged (they are adversarial as they are).

Where the paper and the authors' code (``autopgd_base.py``, copied by torchattacks, whose
APGD the NoFrost reference ``test.py`` ran) differ in details, this follows the code, so that
a 20-step APGD is the paper's APGD column: the checkpoints are the code's integer periods
(the paper's ``⌈p_j · steps⌉`` for 100 steps; for 20 steps 4, 7, 9, then every step, where
``⌈p_j · 20⌉`` would give 5, 9, 12, 14, ...), condition (1) is ``≤``, and condition (2) starts
at the second checkpoint. One difference is kept: condition (1) counts the first step against
the starting point, where the code compares the first loss of a period with 0. Momentum after
a restart from the best point uses the previous iterate, as in the code.

Cost: one forward and backward pass per step and example still under attack, plus one clean
forward pass. The step loop has no host synchronisation except an occasional one (every step
on CPU, every few steps elsewhere) to drop the examples that are already misclassified from
the batch, which is where the time goes: a robust example costs the full budget, a broken one
only the steps until it broke.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nofrost.attacks._common import (
    autocast,
    check_positive_int,
    expected_input_gradient,
)
from nofrost.attacks._core import Ball, run_on_correct
from nofrost.attacks._registry import Setup, register_attack, variant, with_setup

__all__ = [
    "apgd_attack",
    "apgd_ce_attack",
    "apgd_checkpoints",
    "apgd_dlr_attack",
    "apgd_targeted_attack",
    "dlr_loss",
    "targeted_dlr_loss",
    "top_targets",
]

LOSSES: tuple[str, ...] = ("ce", "dlr", "dlr-t")


# --------------------------------------------------------------------------------------------
# Losses and schedule
# --------------------------------------------------------------------------------------------


def dlr_loss(logits: Tensor, y: Tensor) -> Tensor:
    """Per-example DLR loss ``−(z_y − max_{i≠y} z_i) / (z_π1 − z_π3 + 1e-12)``.

    ``z_π1 ≥ z_π2 ≥ …`` are the sorted logits. Positive iff the example is misclassified;
    invariant to shifting and (positively) rescaling the logits. Needs at least 3 classes.
    """
    check_class_count(logits.shape[1], loss="dlr")
    top = logits.topk(3, dim=1).values
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    z_other = logits.scatter(1, y[:, None], float("-inf")).max(dim=1).values
    return -(z_y - z_other) / (top[:, 0] - top[:, 2] + 1e-12)


def targeted_dlr_loss(logits: Tensor, y: Tensor, target: Tensor) -> Tensor:
    """Per-example targeted DLR loss ``−(z_y − z_t) / (z_π1 − (z_π3 + z_π4) / 2 + 1e-12)``.

    The definition of the authors' reference code; needs at least 4 classes.
    """
    check_class_count(logits.shape[1], loss="dlr-t")
    top = logits.topk(4, dim=1).values
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    z_t = logits.gather(1, target[:, None]).squeeze(1)
    return -(z_y - z_t) / (top[:, 0] - 0.5 * (top[:, 2] + top[:, 3]) + 1e-12)


def apgd_checkpoints(steps: int) -> list[int]:
    """The step counts after which APGD may halve its step size, as the authors' code counts them.

    The first period is ``max(⌊0.22 · steps⌋, 1)`` steps; each next one is 3% of ``steps``
    shorter (at least 1 step), but never shorter than ``max(⌊0.06 · steps⌋, 1)``
    (``autopgd_base.py``'s ``n_iter_2``, ``size_decr``, ``n_iter_min``; torchattacks' APGD, which
    the NoFrost reference ``test.py`` ran, copies them). For 100 steps this is the paper's
    ``p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06)``: 22, 41, 57, 70, 80, 87, 93, 99. For 20
    steps it is 4, 7, 9, then every step (the paper's formula would give 5, 9, 12, 14, ...).
    """
    steps = check_positive_int(steps, "steps")
    period, shortest, shrink = max(int(0.22 * steps), 1), max(int(0.06 * steps), 1), max(int(0.03 * steps), 1)
    points = [period]
    while True:
        period = max(period - shrink, shortest)
        if points[-1] + period > steps:
            return [p for p in points if p <= steps]
        points.append(points[-1] + period)


def top_targets(logits: Tensor, y: Tensor, k: int) -> Tensor:
    """(N, k): the ``k`` classes with the highest logits other than ``y``, most likely first."""
    masked = logits.detach().float().scatter(1, y[:, None], float("-inf"))
    return masked.topk(k, dim=1).indices


def sync_period(device: torch.device) -> int:
    """Steps between the host synchronisations that drop broken examples from the batch.

    On CPU a synchronisation is free, so broken examples leave after every step; on an
    accelerator every few steps, so the device queue is not drained at each step.
    """
    return 1 if device.type == "cpu" else 5


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def check_rho(rho: object) -> float:
    if isinstance(rho, bool) or not isinstance(rho, numbers.Real):
        raise ValueError(f"rho must be a number in (0, 1], got {rho!r}")
    value = float(rho)
    if not 0 < value <= 1:
        raise ValueError(f"rho must be a number in (0, 1], got {rho!r}")
    return value


def check_bool(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{what} must be True or False, got {value!r}")
    return value


def check_class_count(
    num_classes: int, *, loss: str, n_target_classes: int | None = None, name: str = "apgd"
) -> None:
    """Raise a clear ValueError if the model has too few classes for the loss / targets."""
    if loss == "dlr" and num_classes < 3:
        raise ValueError(
            f"{name}: the DLR loss needs at least 3 classes (it divides by z_π1 − z_π3), but "
            f"the model has {num_classes} outputs; use the cross-entropy loss (apgd-ce) instead"
        )
    if loss == "dlr-t":
        if num_classes < 4:
            raise ValueError(
                f"{name}: the targeted DLR loss needs at least 4 classes (it uses z_π3 and "
                f"z_π4), but the model has {num_classes} outputs"
            )
    if n_target_classes is not None and n_target_classes > num_classes - 1:
        raise ValueError(
            f"{name}: n_target_classes={n_target_classes} needs at least "
            f"{n_target_classes + 1} classes (the label plus one class per target), but the "
            f"model has {num_classes} outputs; pass n_target_classes={num_classes - 1} or less"
        )


# --------------------------------------------------------------------------------------------
# The attack on examples that are all classified correctly
# --------------------------------------------------------------------------------------------


LossFn = Callable[[Tensor, Tensor, "Tensor | None"], Tensor]


def _loss_fn(loss: str) -> LossFn:
    if loss == "ce":
        return lambda logits, y, target: F.cross_entropy(logits, y, reduction="none")
    if loss == "dlr":
        return lambda logits, y, target: dlr_loss(logits, y)
    if loss == "dlr-t":
        return lambda logits, y, target: targeted_dlr_loss(
            logits, y, target  # type: ignore[arg-type]
        )
    raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")


def _evaluate(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    target: Tensor | None,
    loss_fn: LossFn,
    precision_ctx,
    need_grad: bool,
    eot_iter: int = 1,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Logits, per-example loss (fp32) and, if asked, d sum(loss) / dx at ``x``.

    With ``eot_iter`` > 1 the gradient is the mean over that many forward/backward passes (EOT,
    for randomized models); logits and loss are those of the last pass, as in the authors' code.
    """
    if not need_grad:
        with torch.no_grad(), precision_ctx:
            logits = model(x)
        return logits, loss_fn(logits.float(), y, target), None
    xg = x.detach().requires_grad_(True)  # a separate leaf: updates of x build no graph
    logits, loss, grad = expected_input_gradient(
        model, xg, lambda logits: loss_fn(logits.float(), y, target), precision_ctx, eot_iter
    )
    return logits.detach(), loss.detach(), grad


def _apgd_run(
    model: nn.Module,
    x0: Tensor,
    y: Tensor,
    target: Tensor | None,
    ball: Ball,
    *,
    loss_fn: LossFn,
    steps: int,
    rho: float,
    early_stop: bool,
    generator: torch.Generator | None,
    precision_ctx,
    eot_iter: int = 1,
) -> tuple[Tensor, Tensor, Tensor]:
    """One APGD run from a random start; returns ``(x_adv, fooled, best_loss)`` per row."""
    n = x0.shape[0]
    view = (-1,) + (1,) * (x0.dim() - 1)
    device = x0.device
    x_out = torch.empty_like(x0)
    fooled_out = torch.zeros(n, dtype=torch.bool, device=device)
    loss_out = torch.full((n,), float("-inf"), device=device)

    x = ball.surface_point(generator)

    logits, loss, grad = _evaluate(model, x, y, target, loss_fn, precision_ctx, True, eot_iter)
    assert grad is not None
    fooled = logits.argmax(dim=1) != y
    x_found = x  # the first misclassified iterate (meaningful where ``fooled``)
    x_best, grad_best, loss_best = x, grad, loss
    x_prev = x
    eta = torch.full((n,) + (1,) * (x0.dim() - 1), 2 * ball.eps, dtype=x0.dtype, device=device)
    loss_prev = loss
    successes = torch.zeros(n, dtype=torch.int64, device=device)
    loss_best_at_check = loss_best
    reduced_at_check = torch.ones(n, dtype=torch.bool, device=device)  # (2) starts at the 2nd check
    checkpoints = set(apgd_checkpoints(steps))
    last_check = 0
    rows = torch.arange(n, device=device)  # original row of each example still attacked
    period = sync_period(device)

    for i in range(steps):
        if early_stop and i % period == 0:
            # The only host synchronisation: drop the examples that are already broken.
            keep = (~fooled).nonzero().squeeze(1)
            if keep.numel() < rows.numel():
                gone = fooled.nonzero().squeeze(1)
                x_out[rows[gone]] = x_found[gone]
                fooled_out[rows[gone]] = True
                loss_out[rows[gone]] = loss_best[gone]
                if keep.numel() == 0:
                    return x_out, fooled_out, loss_out
                (x, x_prev, grad, x_best, grad_best, x_found, eta, y, rows) = (
                    t[keep] for t in (x, x_prev, grad, x_best, grad_best, x_found, eta, y, rows)
                )
                ball = ball[keep]
                (loss_best, loss_prev, successes, loss_best_at_check, reduced_at_check) = (
                    t[keep]
                    for t in (loss_best, loss_prev, successes, loss_best_at_check, reduced_at_check)
                )
                fooled = fooled[keep]
                target = target[keep] if target is not None else None

        # ---- momentum step (hot loop: no host synchronisation below) ------------------------
        alpha = 1.0 if i == 0 else 0.75
        momentum = x - x_prev
        x_prev = x
        z = ball.project(x + eta * ball.steepest(grad))
        x = ball.project(x + alpha * (z - x) + (1 - alpha) * momentum)

        last = i == steps - 1  # the gradient at the last iterate would never be used
        logits, loss, grad_new = _evaluate(model, x, y, target, loss_fn, precision_ctx, not last, eot_iter)
        wrong = logits.argmax(dim=1) != y
        x_found = torch.where((wrong & ~fooled).view(view), x, x_found)
        fooled = fooled | wrong
        improved = loss > loss_best
        x_best = torch.where(improved.view(view), x, x_best)
        loss_best = torch.where(improved, loss, loss_best)
        if last:
            break
        assert grad_new is not None
        grad = grad_new
        grad_best = torch.where(improved.view(view), grad, grad_best)
        successes = successes + (loss > loss_prev)
        loss_prev = loss

        if i + 1 in checkpoints:
            # Halve the step and go back to the best point where (1) too few steps since the
            # last checkpoint increased the loss or (2) the step was not halved last time
            # and the best loss has not improved since.
            period_len = i + 1 - last_check
            last_check = i + 1
            reduce = (successes <= rho * period_len) | (
                ~reduced_at_check & (loss_best <= loss_best_at_check)
            )
            r = reduce.view(view)
            eta = torch.where(r, 0.5 * eta, eta)
            x = torch.where(r, x_best, x)
            grad = torch.where(r, grad_best, grad)
            loss_prev = torch.where(reduce, loss_best, loss_prev)
            reduced_at_check = reduce
            loss_best_at_check = loss_best
            successes = torch.zeros_like(successes)

    x_out[rows] = torch.where(fooled.view(view), x_found, x_best)
    fooled_out[rows] = fooled
    loss_out[rows] = loss_best
    return x_out, fooled_out, loss_out


def apgd_on_correct(
    model: nn.Module,
    x0: Tensor,
    y: Tensor,
    ball: Ball,
    *,
    loss: str,
    steps: int,
    restarts: int,
    rho: float,
    early_stop: bool,
    targets: Tensor | None,
    generator: torch.Generator | None,
    precision_ctx,
    eot_iter: int,
) -> tuple[Tensor, Tensor]:
    """APGD on examples the model classifies correctly; returns ``(x_adv, fooled)``.

    The building block of the registered attacks and of AutoAttack (which knows which
    examples are still robust and their clean logits, so it skips the clean forward pass).
    ``loss`` is ``"ce"``, ``"dlr"`` or ``"dlr-t"``; for ``"dlr-t"`` ``targets`` is (N, k): one
    run (with ``restarts`` restarts) per target column, in order, on the examples not yet
    fooled. Restarts run on the examples not yet fooled. Inputs are not validated here and
    the caller holds :func:`attack_mode`. Rows never fooled get the highest-loss point of
    their first target's runs.
    """
    if precision_ctx is None:
        precision_ctx = autocast("fp32", x0.device)
    loss_fn = _loss_fn(loss)
    n = x0.shape[0]
    view = (-1,) + (1,) * (x0.dim() - 1)
    x_adv = x0.clone()
    fooled = torch.zeros(n, dtype=torch.bool, device=x0.device)
    best_loss = torch.full((n,), float("-inf"), device=x0.device)
    columns: list[int | None] = [None]
    if loss == "dlr-t":
        assert targets is not None, "loss='dlr-t' needs targets"
        columns = list(range(targets.shape[1]))
    for j, column in enumerate(columns):
        for restart in range(restarts):
            active = (~fooled).nonzero().squeeze(1)  # one synchronisation per run
            if active.numel() == 0:
                return x_adv, fooled
            target = targets[active, column] if column is not None else None  # type: ignore[index]
            xs, fs, ls = _apgd_run(
                model,
                x0[active],
                y[active],
                target,
                ball[active],
                loss_fn=loss_fn,
                steps=steps,
                rho=rho,
                early_stop=early_stop,
                generator=generator,
                precision_ctx=precision_ctx,
                eot_iter=eot_iter,
            )
            # Broken rows take their adversarial; the others the higher-loss point (only
            # within the first target: losses toward different targets do not compare).
            take = (fs | (ls > best_loss[active])) if j == 0 else fs
            x_adv[active] = torch.where(take.view(view), xs, x_adv[active])
            best_loss[active] = torch.where(take, ls, best_loss[active])
            fooled[active] = fs
    return x_adv, fooled


# --------------------------------------------------------------------------------------------
# Registered attacks
# --------------------------------------------------------------------------------------------


def _apgd_rows(
    model: nn.Module, x0: Tensor, y: Tensor, ball: Ball, clean_logits: Tensor, num_classes: int,
    precision_ctx, *, loss: str, steps: int, restarts: int, rho: float, early_stop: bool,
    generator: torch.Generator | None, eot_iter: int, n_target_classes: int | None = None,
) -> Tensor:
    """APGD on correctly classified rows (apgd-t: toward their top ``n_target_classes``)."""
    targets = top_targets(clean_logits, y, n_target_classes) if loss == "dlr-t" else None
    x_rows, _ = apgd_on_correct(
        model, x0, y, ball, loss=loss, steps=steps, restarts=restarts, rho=rho, early_stop=early_stop,
        targets=targets, generator=generator, precision_ctx=precision_ctx, eot_iter=eot_iter,
    )
    return x_rows


def _apgd_attack(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    setup: Setup,
    *,
    loss: str = "ce",
    steps: int = 100,
    restarts: int = 1,
    n_target_classes: int | None = 9,
    rho: float = 0.75,
    early_stop: bool = True,
    eot_iter: int = 1,
) -> Tensor:
    """APGD (Croce & Hein, ICML 2020) on the ``"ce"``, ``"dlr"`` or targeted ``"dlr-t"`` loss.

    Args:
        model, x, y, eps: as for every attack (see :mod:`nofrost.attacks`); ``eps`` is the
            radius of the ε-ball of ``norm`` (ℓ∞: 8/255, not 8; ℓ2: e.g. 0.5).
        loss: ``"ce"`` (cross-entropy), ``"dlr"`` (:func:`dlr_loss`, needs K ≥ 3) or
            ``"dlr-t"`` (APGD-T: :func:`targeted_dlr_loss` toward each of the
            ``n_target_classes`` classes with the highest clean logits other than the label,
            one after the other, most likely first, on the examples no run has misclassified
            yet; an example counts as broken when it is misclassified as anything). APGD-T
            needs ``K ≥ max(4, n_target_classes + 1)`` classes (standard AutoAttack: 9
            targets, so K ≥ 10).
        steps: iterations per restart (100 in standard AutoAttack, 20 in the NoFrost paper).
        restarts: random restarts (per target), each on the examples not yet misclassified.
        n_target_classes: the targets of ``"dlr-t"`` (unused by the other losses).
        rho: the fraction of loss-increasing steps below which the step size is halved.
        early_stop: stop attacking an example once an iterate is misclassified (the result
            is the same up to which misclassified point is returned; it only saves time).
        eot_iter: gradients averaged over this many passes per step (Expectation over
            Transformation, Athalye et al. 2018, for randomized models; 1: plain APGD).
        generator, precision, num_classes, norm: as for every attack (:class:`Setup`).

    Returns:
        ``x_adv`` (detached), shape and dtype of ``x``, in [0, 1] and within ``eps`` of ``x``:
        per example a misclassified iterate if one was found, else the highest-loss iterate;
        examples the model misclassifies already are returned unchanged.
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    name = "apgd-t" if loss == "dlr-t" else f"apgd-{loss}"
    eot_iter = check_positive_int(eot_iter, "eot_iter")
    steps = check_positive_int(steps, "steps")
    restarts = check_positive_int(restarts, "restarts")
    rho = check_rho(rho)
    early_stop = check_bool(early_stop, "early_stop")
    if loss == "dlr-t":
        n_target_classes = check_positive_int(n_target_classes, "n_target_classes")

    targets = n_target_classes if loss == "dlr-t" else None
    check_classes = partial(check_class_count, loss=loss, n_target_classes=targets, name=name)
    if setup.num_classes is not None:
        check_classes(setup.num_classes)
    return run_on_correct(
        model, x, y, eps, setup.precision, partial(
            _apgd_rows, model, loss=loss, steps=steps, restarts=restarts, rho=rho, early_stop=early_stop,
            n_target_classes=n_target_classes, generator=setup.generator, eot_iter=eot_iter,
        ), norm=setup.norm, check_classes=check_classes,
    )  # fmt: skip


apgd_attack = with_setup(_apgd_attack, "apgd", ("linf", "l2"))


def _register(name: str, loss: str, doc: str, fixed: dict) -> Callable[..., Tensor]:
    """The registered APGD variant ``name``: :func:`apgd_attack` with its ``loss`` fixed."""
    return register_attack(
        name, display=name.upper(), paper_budget=20, norms=("linf", "l2"),
        on_correct=partial(_apgd_rows, loss=loss, **{k: v for k, v in fixed.items() if k != "loss"}),
    )(variant(apgd_attack, name.replace("-", "_") + "_attack", doc, fixed={"loss": loss, **fixed}))  # fmt: skip


apgd_ce_attack = _register("apgd-ce", "ce", "APGD on the cross-entropy loss; see :func:`apgd_attack`.",
                           {"n_target_classes": None})  # fmt: skip
apgd_dlr_attack = _register("apgd-dlr", "dlr", "APGD on the DLR loss (needs ≥ 3 classes); see :func:`apgd_attack`.",
                            {"n_target_classes": None})  # fmt: skip
apgd_targeted_attack = _register(
    "apgd-t", "dlr-t",
    "APGD-T: APGD on the targeted DLR loss toward each of the top ``n_target_classes`` classes "
    "(``loss='dlr-t'`` of :func:`apgd_attack`).", {},
)  # fmt: skip
