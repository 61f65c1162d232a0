"""Decision margin M(x) (NoFrost paper, Sec. 4.3, after Kim et al. 2021)."""

from __future__ import annotations

import torch
from torch import Tensor

from nofrost.evaluate.metrics._registry import MetricBatch, register_metric


def probability_margin(logits: Tensor, y: Tensor) -> Tensor:
    """``p_y − max_{i≠y} p_i`` per row, ``p`` the softmax of ``logits``; negative where the
    prediction is wrong."""
    p = torch.softmax(logits.float(), dim=1)
    true = p.gather(1, y[:, None]).squeeze(1)
    others = p.scatter(1, y[:, None], float("-inf"))
    return true - others.amax(dim=1)


@register_metric("margin", display="M(x)", higher_is_better=True, needs=("clean_logits", "labels"))
def decision_margin(batch: MetricBatch) -> Tensor:
    """Decision margin M(x) = p(x)_y − max_{i≠y} p(x)_i on the clean image (softmax probabilities).

    As defined in the NoFrost paper (Sec. 4.3) after Kim et al. (2021): in [−1, 1], negative
    where the model misclassifies ``x``; larger is better.
    """
    return probability_margin(batch.clean_logits, batch.y)
