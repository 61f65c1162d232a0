"""Draws for DeepAugment's random distortions.

Every draw comes from torch's global RNGs, which the trainer re-seeds at every epoch from
(seed, epoch, rank): DeepAugment is then deterministic given the run's seed and ``--resume``
stays exact. Control draws (which option, which layer) are CPU scalars, so they never wait
for the device; noise tensors are drawn on the device of the tensor they perturb.
"""

from __future__ import annotations

import torch


def randint(low: int, high: int) -> int:
    """An integer in [low, high], both included."""
    return int(torch.randint(low, high + 1, ()).item())


def uniform(low: float = 0.0, high: float = 1.0) -> float:
    return low + (high - low) * float(torch.rand(()).item())


def chance(p: float) -> bool:
    return uniform() < p


def choice(options: list | tuple | range):
    return options[randint(0, len(options) - 1)]
