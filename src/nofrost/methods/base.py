"""The interface between training objectives and the trainer."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Callable, ContextManager, Protocol

import torch
from torch import Tensor, nn

from nofrost.config import AttackConfig, MethodConfig
from nofrost.registry import Registry


@dataclass
class StepContext:
    """What a method may use besides the model and the batch.

    ``attack`` makes adversarial examples with the training attack's settings; ``autocast``
    returns the mixed-precision context for the loss forwards (the attack handles its own
    precision); ``label_smoothing`` applies to every cross-entropy term.
    """

    attack: Callable[[nn.Module, Tensor, Tensor], Tensor]
    autocast: Callable[[], ContextManager] = contextlib.nullcontext
    label_smoothing: float = 0.0


@dataclass
class StepOutput:
    """A method's loss plus the logits the trainer reports accuracies from."""

    loss: Tensor
    logits_clean: Tensor | None = None
    logits_adv: Tensor | None = None
    extras: dict[str, Tensor] = field(default_factory=dict)


class TrainingMethod(Protocol):
    def __call__(self, model: nn.Module, x: Tensor, y: Tensor, ctx: StepContext) -> StepOutput: ...


MethodFactory = Callable[[MethodConfig], TrainingMethod]
METHODS: Registry[MethodFactory] = Registry("training method")


def build_method(config: MethodConfig) -> TrainingMethod:
    return METHODS.get(config.name)(config)


def make_training_attack(config: AttackConfig) -> Callable[[nn.Module, Tensor, Tensor], Tensor]:
    """PGD with the training settings: random start, CE loss, eval mode unless told otherwise."""
    from nofrost.attacks import pgd_attack

    def attack(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        return pgd_attack(
            model,
            x,
            y,
            config.eps,
            steps=config.steps,
            step_size=config.step_size,
            train_mode=not config.eval_mode,
            precision=config.precision,
        )

    return attack


def cross_entropy(logits: Tensor, y: Tensor, ctx: StepContext) -> Tensor:
    return torch.nn.functional.cross_entropy(logits.float(), y, label_smoothing=ctx.label_smoothing)
