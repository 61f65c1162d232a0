"""Optimizer, learning-rate schedule and adaptive gradient clipping."""

from __future__ import annotations

import math

import torch
from torch import nn

from nofrost.config import OptimConfig


def build_optimizer(model: nn.Module, config: OptimConfig) -> torch.optim.Optimizer:
    """SGD with (Nesterov) momentum; no weight decay on biases, gains and norm affines.

    The learning rate is ``config.scaled_lr``: ``lr``, or ``lr · batch_size / lr_base_batch``
    when linear scaling is asked for.

    Decaying one-dimensional parameters shrinks BN/NF gains towards zero, which hurts
    normalizer-free networks most; the usual practice (timm, NFNets) exempts them.
    """
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.ndim > 1 else no_decay).append(param)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.SGD(
        groups, lr=config.scaled_lr, momentum=config.momentum, nesterov=config.nesterov and config.momentum > 0
    )


def build_schedule(
    optimizer: torch.optim.Optimizer, config: OptimConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up, then cosine annealing to zero, stepped every iteration."""
    total = config.epochs * steps_per_epoch
    warmup = round(config.warmup_epochs * steps_per_epoch)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def head_excluded_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Parameters that adaptive gradient clipping applies to: all but the classifier head.

    Brock et al. 2021b found clipping the final linear layer harmful.
    """
    head = _classifier(model)
    skip = {id(p) for p in head.parameters()} if head is not None else set()
    return [p for p in model.parameters() if p.requires_grad and id(p) not in skip]


def _classifier(model: nn.Module) -> nn.Module | None:
    last = None
    for module in model.modules():
        if isinstance(module, nn.Linear):
            last = module
    return last
