"""Ghost batch norm: batch statistics over fixed-size groups of the batch.

E. Hoffer, I. Hubara, D. Soudry, "Train longer, generalize better: closing the generalization
gap in large batch training of neural networks", NeurIPS 2017. In training mode the batch is
cut into consecutive groups of ``group_size`` examples (the last one may be smaller) and each
group is normalized with its own mean and variance; in eval mode the layer is an ordinary BN.

Why nofrost has it: the NoFrost reference code trains its BN baselines on 8 GPUs with 32
images each and per-process statistics (``PGDAT.py``: DDP with ``broadcast_buffers=False``),
so BN sees 32 images, whatever the global batch of 256. ``runtime.bn_group_size: 32``
gives every BN layer those statistics on any number of devices, one GPU included.

The running statistics move once per forward pass, by the momentum, toward the mean over the
groups of their batch means and of their unbiased batch variances: the same expectation as one
process's running statistics in the reference run, with less noise.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GhostBatchNorm2d", "convert_to_ghost_bn"]


class GhostBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` whose training-mode statistics come from groups of ``group_size``."""

    def __init__(self, num_features: int, group_size: int, **kwargs) -> None:
        super().__init__(num_features, **kwargs)
        if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 2:
            raise ValueError(f"ghost batch norm needs a group size of at least 2 examples, got {group_size!r}")
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or x.shape[0] <= self.group_size:
            return super().forward(x)
        self._check_input_dim(x)
        groups = x.split(self.group_size)
        if any(g.shape[0] * g.shape[2] * g.shape[3] < 2 for g in groups):
            raise ValueError(
                f"ghost batch norm got a group of {groups[-1].shape[0]} example(s) of size "
                f"{tuple(x.shape[2:])}: too few values for a variance; use a batch that divides "
                f"evenly by runtime.bn_group_size={self.group_size}"
            )
        if not self.track_running_stats:
            return torch.cat([F.batch_norm(g, None, None, self.weight, self.bias, True, 0.0, self.eps) for g in groups])
        # With momentum 1, batch_norm writes each group's mean and unbiased variance into its
        # row of these buffers: the statistics come out of the one pass that normalizes.
        means = self.running_mean.new_zeros(len(groups), self.num_features)
        variances = self.running_var.new_ones(len(groups), self.num_features)
        out = torch.cat([
            F.batch_norm(g, means[i], variances[i], self.weight, self.bias, True, 1.0, self.eps)
            for i, g in enumerate(groups)
        ])  # fmt: skip
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            # momentum None: a cumulative average, as nn.BatchNorm2d
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
            self.running_mean.lerp_(means.mean(0), factor)
            self.running_var.lerp_(variances.mean(0), factor)
        return out

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, group_size={self.group_size}"


def convert_to_ghost_bn(model: nn.Module, group_size: int) -> nn.Module:
    """Replace every ``nn.BatchNorm2d`` of ``model`` (in place) by a ``GhostBatchNorm2d`` with
    the same parameters and running statistics; returns ``model``."""
    for name, child in model.named_children():
        if type(child) is nn.BatchNorm2d:
            ghost = GhostBatchNorm2d(
                child.num_features, group_size, eps=child.eps, momentum=child.momentum, affine=child.affine,
                track_running_stats=child.track_running_stats,
                device=child.weight.device if child.weight is not None else None,
            )
            ghost.load_state_dict(child.state_dict())
            ghost.train(child.training)
            setattr(model, name, ghost)
        else:
            convert_to_ghost_bn(child, group_size)
    return model
