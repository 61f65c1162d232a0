"""Projected gradient descent (PGD) under ℓ∞ or ℓ2, untargeted and targeted.

PGD: A. Madry, A. Makelov, L. Schmidt, D. Tsipras, A. Vladu, "Towards Deep Learning Models
Resistant to Adversarial Attacks", ICLR 2018. Start at a random point of the ε-ball, take
steps of size α along the steepest-ascent direction of the cross-entropy loss (its sign under
ℓ∞, the normalised gradient under ℓ2) and project back onto the ε-ball ∩ [0, 1] after each
step.

The loss is the cross-entropy or, with ``loss="cw"``, the Carlini–Wagner margin (the
``cw-linf`` attack, as the NoFrost reference code ran it: advertorch's PGD with a CW loss);
with ``decay`` the steps follow a momentum of ℓ1-normalised gradients (MI-FGSM, ``mifgsm``).
BIM, PGD^T, CW-ℓ∞ and MI-FGSM are registered as variants of :func:`pgd_attack`, with some
options fixed.

PGD^T (``pgd-t``): the targeted variant used in the NoFrost paper (H. Wang, A. Zhang, S. Zheng,
X. Shi, M. Li, Z. Wang, "Removing Batch Normalization Boosts Adversarial Training", ICML 2022):
each image is pushed toward a uniformly random class other than its label by *minimising* the
cross-entropy to that target.

This is the hot loop of adversarial training, so the step loop contains no host
synchronisation (no ``.item()``, no Python branching on tensor values). All validation, which
does synchronise, happens once: before the loop, and on the first forward pass (to check the
labels against the width of the model's logits).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nofrost.attacks._common import (
    attack_mode,
    autocast,
    check_labels,
    check_labels_in_range,
    check_logits_and_labels,
    check_positive_int,
    check_same_device,
    check_non_negative,
    check_step_size,
    random_targets,
)
from nofrost.attacks._core import Ball
from nofrost.attacks._registry import Setup, register_attack, variant
from nofrost.attacks._steepest import steepest_ascent

__all__ = ["cw_margin", "default_step_size", "pgd_attack", "pgd_targeted_attack"]


#: PGD's losses: cross-entropy, or the Carlini–Wagner margin (``cw_margin``).
LOSSES: tuple[str, ...] = ("ce", "cw")
#: Named step-size rules (besides a number): ``"pgd"``, :func:`default_step_size`;
#: ``"eps/steps"``, Dong et al.'s ε/T (T steps of it reach the boundary from ``x``).
STEP_RULES: tuple[str, ...] = ("pgd", "eps/steps")


def cw_margin(logits: Tensor, y: Tensor, confidence: float = 50.0) -> Tensor:
    """Per-example ``max(z_y − max_{i≠y} z_i, −κ)``; negative iff the example is misclassified."""
    z = logits.float()
    true = z.gather(1, y[:, None]).squeeze(1)
    other = z.scatter(1, y[:, None], float("-inf")).amax(dim=1)
    return (true - other).clamp(min=-confidence)


def default_step_size(eps: float, steps: int, norm: str = "linf") -> float:
    """ℓ∞: ``min(1.25 ε, ε + 4/255) / steps``, the step size of the NoFrost reference code;
    ℓ2: ``2.5 ε / steps`` (Madry et al. 2018's rule, used by the robustness library).

    The total path length exceeds ε so that, from a random start, PGD can still reach the
    opposite side of the ε-ball; under ℓ∞ the excess is capped at 4/255 for large ε.
    """
    if norm == "l2":
        return 2.5 * eps / steps
    return min(1.25 * eps, eps + 4 / 255) / steps


@register_attack("pgd", display="PGD", norms=("linf", "l2"))
def pgd_attack(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    setup: Setup,
    *,
    steps: int = 10,
    step_size: float | str | None = None,
    restarts: int = 1,
    random_start: bool = True,
    targeted: bool = False,
    target: Tensor | None = None,
    loss: str = "ce",
    confidence: float = 50.0,
    decay: float | None = None,
    train_mode: bool = False,
    eot_iter: int = 1,
) -> Tensor:
    """PGD (Madry et al., ICLR 2018); returns ``x_adv``.

    Args:
        model, x, y, eps: as for every attack (see :mod:`nofrost.attacks`); ``eps`` is the
            radius of the ε-ball of ``norm``.
        steps: gradient steps per restart.
        step_size: α: a number, or the name of a rule: ``"pgd"`` (the default,
            :func:`default_step_size` ``(eps, steps, norm)``) or ``"eps/steps"``.
        restarts: independent random restarts. Each image keeps the first restart's
            adversarial that fools the model (untargeted: misclassified; targeted: classified
            as the target), otherwise the last restart's. ``restarts=1`` costs no extra forward.
        random_start: start at a random point of the ε-ball (:meth:`Ball.random_start`),
            else at ``x``.
        targeted: minimise the cross-entropy to ``target`` instead of maximising it to ``y``.
        target: int64 (N,) target classes for ``targeted=True``; if omitted, a uniformly
            random class ≠ y per image (:func:`random_targets`). Random targets are drawn from
            ``generator`` *before* the random start, so ``random_targets(y, K, g)`` with an
            equally seeded ``g`` reproduces them.
        loss: ``"ce"`` (cross-entropy) or ``"cw"`` (ascend ``−`` :func:`cw_margin`: push the
            true logit below the best other one, by at most ``confidence``; untargeted).
        confidence: κ of the ``"cw"`` loss (default 50, the NoFrost reference code's).
        decay: momentum μ (MI-FGSM, Dong et al. 2018): each step follows
            ``g ← μ g + ∇ / ‖∇‖₁``; ``None`` (default): plain gradient steps.
        train_mode: keep every submodule in its current train/eval mode instead of eval mode
            (for training-time attacks that should see e.g. batch statistics).
        eot_iter: gradients averaged over this many passes per step (Expectation over
            Transformation, for randomized models; 1: plain PGD).
        generator, precision, num_classes, norm: as for every attack (:class:`Setup`).

    Returns:
        ``x_adv`` with the shape and dtype of ``x``, in [0, 1] and within ``eps`` of ``x``
        (detached). The model's parameters, ``requires_grad`` flags and train/eval modes are
        restored on return, also if the attack raises.
    """
    # ---- validation, all up front (the base call has checked the inputs) -------------------
    steps = check_positive_int(steps, "steps")
    restarts = check_positive_int(restarts, "restarts")
    eot_iter = check_positive_int(eot_iter, "eot_iter")
    step_size = _step_size(step_size, eps, steps, setup.norm)
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    if loss == "cw" and targeted:
        raise ValueError("the 'cw' loss is untargeted; use loss='ce' for a targeted attack")
    confidence = check_non_negative(confidence, "confidence (κ)")
    if decay is not None:
        decay = check_non_negative(decay, "decay (e.g. 1.0)")
    generator, num_classes = setup.generator, setup.num_classes
    n = x.shape[0]
    if target is not None:
        if not targeted:
            raise ValueError(
                "a target was given but targeted=False; pass targeted=True (or use 'pgd-t') "
                "for a targeted attack"
            )
        check_labels(target, n, what="target")
        check_same_device(x, target, what="target")
        if num_classes is not None:
            check_labels_in_range(target, num_classes, what="target")

    x0 = x.detach()
    if n == 0:
        return x0.clone()
    ball = Ball(x0, eps, setup.norm)
    with attack_mode(model, train_mode=train_mode), torch.enable_grad():
        precision_ctx = autocast(setup.precision, x0.device)
        labels = target if targeted else y
        checked = num_classes is not None and (target is not None or not targeted)
        if targeted and target is None:
            if num_classes is None:
                # The number of classes is needed before the random start (targets are drawn
                # first); learn it and check the labels with one clean forward pass.
                with torch.no_grad(), precision_ctx:
                    num_classes = check_logits_and_labels(model(x0), y)
            labels = random_targets(y, num_classes, generator)
            checked = True
        assert labels is not None

        sign = -1.0 if targeted else 1.0  # descend to the target, ascend on y

        def objective(logits: Tensor) -> Tensor:
            # fp32 loss even under bf16 autocast; "sum" keeps per-image gradients
            # independent of the batch size.
            if loss == "cw":
                return -cw_margin(logits, y, confidence).sum()
            return sign * F.cross_entropy(logits.float(), labels, reduction="sum")

        best: Tensor | None = None
        found: Tensor | None = None
        for restart in range(restarts):
            start = ball.random_start(generator) if random_start else x0
            x_adv, _ = steepest_ascent(
                model, start, ball, objective, steps=steps, step_size=step_size, precision_ctx=precision_ctx,
                eot_iter=eot_iter, momentum=decay,
                # first forward only: check the labels against the logits' width
                on_first_logits=None if checked else (lambda logits: check_logits_and_labels(logits, y, target)),
            )
            checked = True
            if restarts == 1:
                return x_adv

            with torch.no_grad(), precision_ctx:
                pred = model(x_adv).argmax(dim=1)
            success = pred == labels if targeted else pred != y
            if best is None or found is None:
                best, found = x_adv, success
            else:
                # Images not yet fooled take this restart's adversarial; fooled ones keep theirs.
                keep_new = (~found).view(-1, *([1] * (x0.dim() - 1)))
                best = torch.where(keep_new, x_adv, best)
                found = found | success
            # One synchronisation per restart (not per step): stop once every image is fooled,
            # further restarts could not change the result.
            if restart < restarts - 1 and bool(found.all()):
                break

    assert best is not None
    return best


def _step_size(step_size: float | str | None, eps: float, steps: int, norm: str) -> float:
    """α from a number or a rule of :data:`STEP_RULES` (``None``: ``"pgd"``)."""
    if step_size is None or step_size == "pgd":
        return default_step_size(eps, steps, norm)
    if step_size == "eps/steps":
        return eps / steps
    if isinstance(step_size, str):
        raise ValueError(
            f"step_size must be a number or a rule: 'pgd' for PGD's rule (the default) or 'eps/steps', "
            f"got {step_size!r}"
        )
    return check_step_size(step_size, norm=norm)


pgd_targeted_attack = register_attack("pgd-t", display="PGD^T", norms=("linf", "l2"))(
    variant(
        pgd_attack,
        "pgd_targeted_attack",
        """PGD^T (NoFrost, Wang et al., ICML 2022): targeted PGD toward a random class ≠ y.

        :func:`pgd_attack` with ``targeted=True``: minimises the cross-entropy to a uniformly
        random wrong class per image (or to ``target`` if given).
        """,
        fixed={"targeted": True, "loss": "ce", "confidence": 50.0, "decay": None},
    )
)
