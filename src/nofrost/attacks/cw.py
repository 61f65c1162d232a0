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
this attack often beats PGD-CE on models whose softmax is very peaked. It is
:func:`~nofrost.attacks.pgd.pgd_attack` with ``loss="cw"``, as the reference code built it
(advertorch's PGD with a CW loss function).
"""

from __future__ import annotations

from nofrost.attacks._registry import register_attack, variant
from nofrost.attacks.pgd import cw_margin, pgd_attack

__all__ = ["cw_linf_attack", "cw_margin"]

cw_linf_attack = register_attack("cw-linf", display="CW∞", paper_budget=20)(
    variant(
        pgd_attack,
        "cw_linf_attack",
        """ℓ∞ PGD on the Carlini–Wagner margin loss; returns ``x_adv``.

        :func:`~nofrost.attacks.pgd.pgd_attack` with ``loss="cw"`` (κ = ``confidence``,
        default 50), untargeted, one run from a random start (``random_start=False``: from
        ``x``), 20 steps by default (the NoFrost paper's evaluation budget). ℓ∞ only.
        """,
        fixed={"loss": "cw", "targeted": False, "target": None, "restarts": 1, "decay": None},
        defaults={"steps": 20},
    )
)
