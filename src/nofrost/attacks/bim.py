"""Basic Iterative Method (BIM, "iterative FGSM").

A. Kurakin, I. Goodfellow, S. Bengio, "Adversarial Examples in the Physical World", ICLR 2017
workshop (arXiv:1607.02533). Start at the clean image (no random start), take ``steps`` steps
of size α along the sign of the input gradient of the cross-entropy loss, and clip to the
ε-ball ∩ [0, 1] after each step.

Kurakin et al. use α = 1 (on the 0-255 scale) and min(ε + 4, 1.25 ε) iterations, i.e. a total
path length of min(1.25 ε, ε + 4/255); with a fixed number of ``steps`` the same path length
gives α = min(1.25 ε, ε + 4/255) / steps, which is :func:`nofrost.attacks.pgd.default_step_size`
(the NoFrost reference code took its PGD step size from this rule). BIM is PGD without the
random start, so it is implemented as exactly that (under ℓ∞ or, stepping along the
normalised gradient, ℓ2).
"""

from __future__ import annotations

from nofrost.attacks._registry import register_attack, variant
from nofrost.attacks.pgd import pgd_attack

__all__ = ["bim_attack"]

bim_attack = register_attack("bim", display="BIM", norms=("linf", "l2"))(
    variant(
        pgd_attack,
        "bim_attack",
        """BIM / iterative FGSM (Kurakin et al., 2017): PGD from the clean image; returns ``x_adv``.

        :func:`~nofrost.attacks.pgd.pgd_attack` with ``random_start=False`` and one restart,
        20 steps by default (the NoFrost paper's evaluation budget). Deterministic: the
        ``generator`` is accepted for a uniform attack interface.
        """,
        fixed={"random_start": False, "restarts": 1, "targeted": False, "target": None, "loss": "ce",
               "confidence": 50.0, "decay": None},
        defaults={"steps": 20},
    )
)
