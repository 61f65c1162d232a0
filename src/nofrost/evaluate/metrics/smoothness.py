"""KL smoothness D(x) (NoFrost paper, Sec. 4.3, after Zhang et al. 2019 and Kim et al. 2021)."""

from __future__ import annotations

import torch
from torch import Tensor

from nofrost.evaluate.metrics._registry import MetricBatch, register_metric


def kl_divergence(logits_p: Tensor, logits_q: Tensor) -> Tensor:
    """``KL(p ‖ q) = Σ_k p_k (log p_k − log q_k)`` per row, ``p``, ``q`` the softmaxes."""
    log_p = torch.log_softmax(logits_p.float(), dim=1)
    log_q = torch.log_softmax(logits_q.float(), dim=1)
    return (log_p.exp() * (log_p - log_q)).sum(dim=1)


@register_metric("smoothness", display="D(x)", higher_is_better=False, needs=("clean_logits", "adversarial"))
def kl_smoothness(batch: MetricBatch, *, steps: int = 20) -> Tensor:
    """KL smoothness D(x) = KL(p(x) ‖ p(x*)), x* from untargeted PGD in the evaluation's threat model.

    As defined in the NoFrost paper (Sec. 4.3), which does not say how its ``x*`` was made;
    here it is PGD with ``steps`` iterations (20, the paper's white-box budget) at the
    evaluation's ε and norm, from a random start, against the model's own prediction (so
    every example is attacked, misclassified ones too). 0 where the model's output does not
    move; smaller is smoother.
    """
    x_star = batch.adversarial("pgd", steps=steps)
    return kl_divergence(batch.clean_logits, batch.logits(x_star))
