"""Scoring a model on some of its classes: the protocol of ImageNet-R and ImageNet-A.

Their authors evaluate a 1000-class model on the 200 classes each set covers by keeping those
200 logits (github:hendrycks/imagenet-r and github:hendrycks/natural-adv-examples eval.py:
``output[:, indices_in_1k]``). :func:`nofrost.evaluate.evaluate` does the same for any dataset
with a ``class_subset``: the prediction is the argmax over those logits, and attacks, metrics
and the audit see only them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["SubsetLogits"]


class SubsetLogits(nn.Module):
    """``model`` with only the logits of ``classes`` (sorted class indices), in that order.

    Class ``classes[k]`` of the model is class ``k`` here; :meth:`positions` maps labels over
    the model's classes to these positions.
    """

    def __init__(self, model: nn.Module, classes: Sequence[int]) -> None:
        super().__init__()
        classes = [int(c) for c in classes]
        if not classes or classes != sorted(set(classes)) or classes[0] < 0:
            raise ValueError(f"class_subset must be sorted, distinct class indices >= 0, got {classes[:8]}...")
        self.model = model
        self.register_buffer("classes", torch.tensor(classes, dtype=torch.int64), persistent=False)
        position = torch.full((classes[-1] + 1,), -1, dtype=torch.int64)
        position[self.classes] = torch.arange(len(classes))
        self.register_buffer("position", position, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        logits = self.model(x)
        if logits.shape[1] <= int(self.classes[-1]):
            raise ValueError(f"the dataset covers classes up to {int(self.classes[-1])} but the model has "
                             f"{logits.shape[1]} outputs; evaluate it with a model of the full label space")
        return logits.index_select(1, self.classes)

    def positions(self, labels: Tensor) -> Tensor:
        """Each label's position in ``classes`` (ValueError for a label outside them)."""
        found = self.position[labels.clamp(max=len(self.position) - 1)]
        outside = (labels >= len(self.position)) | (found < 0)
        if bool(outside.any()):
            raise ValueError(f"labels {sorted(set(labels[outside].tolist()))[:5]} lie outside the dataset's "
                             "class_subset; its labels must be among the classes it covers")
        return found
