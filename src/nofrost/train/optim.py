"""Optimizer, learning-rate schedule and adaptive gradient clipping."""

from __future__ import annotations

import math

import torch
from torch import nn

from nofrost.config import WEIGHT_DECAY_ON, OptimConfig


# The layers whose ``weight`` is a weight matrix or kernel (including timm's ScaledStdConv2d,
# a Conv2d); every other parameter is a bias, a gain or a norm affine.
_WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def is_weight(module: nn.Module, name: str) -> bool:
    """Whether parameter ``name`` of ``module`` (not of a child) is a conv/linear weight."""
    return name == "weight" and isinstance(module, _WEIGHT_LAYERS)


def weight_decay_groups(model: nn.Module, decay_on: str) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """``(decayed, exempt)`` trainable parameters, chosen by role, never by shape.

    ``decay_on="all"`` decays every parameter, as the reference code does (``PGDAT.py`` passes
    ``model.parameters()`` to SGD). ``"weights"`` decays only conv and linear weights and exempts
    biases, gains (the per-channel gains of Scaled-WS convolutions, SkipInit gains) and norm
    affines alike, so BN and NF networks are treated the same way.
    """
    if decay_on not in WEIGHT_DECAY_ON:
        raise ValueError(f"weight decay applies to one of {', '.join(WEIGHT_DECAY_ON)}, got {decay_on!r}")
    decayed, exempt = [], []
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if param.requires_grad:
                (decayed if decay_on == "all" or is_weight(module, name) else exempt).append(param)
    return decayed, exempt


def build_optimizer(model: nn.Module, config: OptimConfig) -> torch.optim.Optimizer:
    """SGD with (Nesterov) momentum and weight decay on ``config.weight_decay_on`` parameters.

    The learning rate is ``config.scaled_lr``: ``lr``, or ``lr · batch_size / lr_base_batch``
    when linear scaling is asked for. Group 0 is decayed, group 1 (possibly empty) is not.
    """
    decayed, exempt = weight_decay_groups(model, config.weight_decay_on)
    groups = [
        {"params": decayed, "weight_decay": config.weight_decay},
        {"params": exempt, "weight_decay": 0.0},
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
