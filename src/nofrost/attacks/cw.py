"""ℓ∞ PGD on the Carlini–Wagner margin loss ("CW∞" in the NoFrost paper).

N. Carlini, D. Wagner, "Towards Evaluating the Robustness of Neural Networks", IEEE S&P 2017,
proposed the margin objective f(x) = max(z_y(x) − max_{i≠y} z_i(x), −κ) on the logits z. The
ℓ∞ "CW" attack of robustness evaluations (here: the NoFrost paper's CW∞ column, H. Wang et
al., "Removing Batch Normalization Boosts Adversarial Training", ICML 2022) is PGD that
*minimises* this margin instead of maximising the cross-entropy: a random start in the
ε-ball, signed-gradient steps, projection onto the ε-ball ∩ [0, 1] after each step.

κ ("confidence") defaults to 50 as in the NoFrost reference code: the loss keeps pushing the
margin down until the wrong class leads by 50 logits, i.e. in practice for all 20 steps.
Unlike the cross-entropy, the margin does not saturate on confidently classified examples, so
this attack often beats PGD-CE on models whose softmax is very peaked.
"""

from __future__ import annotations

from torch import Tensor, nn

from nofrost.attacks._common import check_non_negative, check_positive_int, check_step_size
from nofrost.attacks._registry import Setup, register_attack
from nofrost.attacks._steepest import one_run_attack
from nofrost.attacks.pgd import default_step_size

__all__ = ["cw_linf_attack", "cw_margin"]


def cw_margin(logits: Tensor, y: Tensor, confidence: float = 50.0) -> Tensor:
    """Per-example ``max(z_y − max_{i≠y} z_i, −κ)``; negative iff the example is misclassified."""
    z = logits.float()
    true = z.gather(1, y[:, None]).squeeze(1)
    other = z.scatter(1, y[:, None], float("-inf")).amax(dim=1)
    return (true - other).clamp(min=-confidence)


@register_attack("cw-linf", display="CW∞", paper_budget=20)
def cw_linf_attack(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    setup: Setup,
    *,
    steps: int = 20,
    step_size: float | None = None,
    confidence: float = 50.0,
    random_start: bool = True,
    train_mode: bool = False,
    eot_iter: int = 1,
) -> Tensor:
    """ℓ∞ PGD on the Carlini–Wagner margin loss; returns ``x_adv``.

    Args:
        model, x, y, eps: as for every attack (see :mod:`nofrost.attacks`); ℓ∞ only.
        steps: gradient steps (default 20, the NoFrost paper's evaluation budget).
        step_size: α; default :func:`~nofrost.attacks.pgd.default_step_size` as for PGD.
        confidence: κ, the margin below which the loss stops decreasing (default 50).
        random_start: start uniformly at random in the ε-ball (default, as PGD) or at ``x``.
        train_mode: keep the model's train/eval modes instead of eval mode.
        eot_iter: gradients averaged over this many passes per step (EOT, for randomized models).
        generator, precision, num_classes, norm: as for every attack (:class:`Setup`).
    """
    steps = check_positive_int(steps, "steps")
    step_size = default_step_size(eps, steps) if step_size is None else check_step_size(step_size)
    confidence = check_non_negative(confidence, "confidence (κ)")
    eot_iter = check_positive_int(eot_iter, "eot_iter")
    return one_run_attack(
        model, x, y, eps, setup,
        # Descend on the margin (push the true logit below the best other one).
        lambda logits: -cw_margin(logits, y, confidence).sum(),
        steps=steps, step_size=step_size, random_start=random_start, train_mode=train_mode, eot_iter=eot_iter,
    )  # fmt: skip
