"""ℓ∞ momentum iterative FGSM (MI-FGSM; "MIA" in the NoFrost paper).

Y. Dong, F. Liao, T. Pang, H. Su, J. Zhu, X. Hu, J. Li, "Boosting Adversarial Attacks with
Momentum", CVPR 2018. Starting at the clean image, accumulate a velocity of per-example
ℓ1-normalised input gradients of the cross-entropy loss,

    g_{t+1} = μ · g_t + ∇ₓ L(x_t, y) / ‖∇ₓ L(x_t, y)‖₁,
    x_{t+1} = Clip_{x, ε}(x_t + α · sign(g_{t+1})),

with decay μ = 1 and α = ε / T for T steps (Dong et al.'s setting). The NoFrost reference
``test.py`` ran advertorch's momentum attack with its PGD step rule instead, α = min(1.25ε,
ε + 4/255) / T (0.5/255 for ε = 8/255 and 20 steps): ``step_size="pgd"``, which the ``paper``
suite uses.

MI-FGSM is :func:`~nofrost.attacks.pgd.pgd_attack` with ``decay`` μ, no random start and the
``"eps/steps"`` step rule by default.
"""

from __future__ import annotations

from nofrost.attacks._registry import register_attack, variant
from nofrost.attacks.pgd import pgd_attack

__all__ = ["mifgsm_attack"]

mifgsm_attack = register_attack("mifgsm", display="MIA", paper_budget=20)(
    variant(
        pgd_attack,
        "mifgsm_attack",
        """MI-FGSM (Dong et al., CVPR 2018); returns ``x_adv``.

        :func:`~nofrost.attacks.pgd.pgd_attack` from ``x`` with momentum ``decay`` (μ = 1 by
        default, as in the paper; 0 gives BIM with step ε/T), 20 steps (the NoFrost paper's
        MIA) and ``step_size="eps/steps"`` (Dong et al.; ``"pgd"``: the NoFrost reference
        code's PGD rule). ℓ∞ only; deterministic.
        """,
        fixed={"random_start": False, "restarts": 1, "targeted": False, "target": None, "loss": "ce",
               "confidence": 50.0},
        defaults={"steps": 20, "step_size": "eps/steps", "decay": 1.0},
    )
)
