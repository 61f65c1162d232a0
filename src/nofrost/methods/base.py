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

    ``attack(model, x, y, **options)`` makes adversarial examples with the training attack's
    settings: every method gets its x* from it (Free AT aside, whose perturbation is the
    training pass itself). With no options it is PGD on the cross-entropy; a method asks for
    its own inner maximisation with the options of :func:`make_training_attack` (TRADES: the
    KL from a normal start; FAT: an early stop; Fast AT: one step of its own size). ``autocast``
    returns the mixed-precision context for the loss forwards (the attack handles its own
    precision); ``label_smoothing`` applies to every cross-entropy term.

    ``attack_model`` is the network adversarial examples are computed on when it differs from
    the step's ``model`` object: under DDP the step's model is the DistributedDataParallel
    wrapper, whose forwards prepare gradient synchronisation that attack passes must not
    trigger. Methods get it through :meth:`attack_target`. ``fuse_clean_adv`` says that no
    layer mixes examples (no batch norm), so clean and adversarial inputs may share one
    forward/backward pass. ``views`` holds the step's extra views of the batch (e.g. ``"tda"``),
    those the method asked the loader for through its ``views`` attribute.
    """

    attack: Callable[..., Tensor]
    autocast: Callable[[], ContextManager] = contextlib.nullcontext
    label_smoothing: float = 0.0
    attack_model: nn.Module | None = None
    fuse_clean_adv: bool = False
    views: dict[str, Tensor] = field(default_factory=dict)

    def attack_target(self, model: nn.Module) -> nn.Module:
        """The module to attack for the step whose model is ``model``."""
        return model if self.attack_model is None else self.attack_model


@dataclass
class StepOutput:
    """A method's loss plus the logits the trainer reports accuracies from."""

    loss: Tensor
    logits_clean: Tensor | None = None
    logits_adv: Tensor | None = None
    extras: dict[str, Tensor] = field(default_factory=dict)


class TrainingMethod(Protocol):
    def __call__(self, model: nn.Module, x: Tensor, y: Tensor, ctx: StepContext) -> StepOutput: ...


MethodFactory = Callable[[MethodConfig, AttackConfig], TrainingMethod]
METHODS: Registry[MethodFactory] = Registry("training method")

# The hyper-parameters of MethodConfig that are method-specific (``name`` is not).
METHOD_FIELDS: tuple[str, ...] = (
    "lam", "beta", "tau", "replays", "deepaugment", "cae_weights", "edsr_weights", "noise2net_max_epsilon",
)


def register_method(
    name: str, *, uses: tuple[str, ...] = (), display: str | None = None, display_nf: str | None = None,
) -> Callable[[MethodFactory], MethodFactory]:
    """Register ``factory(method_config, attack_config) -> method`` under ``name``.

    ``uses`` names the MethodConfig fields the method reads; :func:`build_method` refuses a
    config that sets any other one, so e.g. ``method.tau`` given to ``trades`` is an error
    rather than silently ignored.

    ``display`` is how tables name the method (the paper's "SAT", "TRADES-FAT"; default: the name
    in capitals); ``display_nf`` names it on a normalizer-free network when the paper gives that
    pairing its own name ("NoFrost" for SAT).
    """
    unknown = set(uses) - set(METHOD_FIELDS)
    if unknown:
        raise ValueError(f"method {name!r} declares unknown config fields {sorted(unknown)}")

    def decorator(factory: MethodFactory) -> MethodFactory:
        factory.config_fields = tuple(uses)  # type: ignore[attr-defined]
        factory.display = display or name.upper()  # type: ignore[attr-defined]
        factory.display_nf = display_nf  # type: ignore[attr-defined]
        return METHODS.register(name)(factory)

    return decorator


def method_label(name: str, norm: str) -> str:
    """How a row of a results table names method ``name`` trained with normalization ``norm``:
    "NoFrost" (SAT on a normalizer-free network), "SAT w/ IN", "ST w/ NF", "MBNAT" (a method
    whose norm is its own, routed one)."""
    from nofrost.models.norms import norm_display, norm_traits

    factory = METHODS.get(name)
    if norm == "none" and factory.display_nf:
        return factory.display_nf
    if norm_traits(norm).routed:
        return factory.display
    return f"{factory.display} w/ {norm_display(norm)}"


def build_method(config: MethodConfig, attack: AttackConfig | None = None) -> TrainingMethod:
    """The method ``config.name``, configured by ``config`` and the training attack's settings.

    A method may expose an int attribute ``replays`` (the trainer then repeats the
    forward/backward/step that many times per minibatch) and ``state_dict()`` /
    ``load_state_dict()`` for state that must survive ``--resume`` (Free AT's perturbation).
    """
    factory = METHODS.get(config.name)
    uses = getattr(factory, "config_fields", ())
    for name in METHOD_FIELDS:
        if getattr(config, name) is not None and name not in uses:
            used = ", ".join(f"method.{u}" for u in uses) or "no method.* hyper-parameters"
            raise ValueError(f"method {config.name!r} does not use method.{name}; it takes {used}")
    return factory(config, attack if attack is not None else AttackConfig())


def make_training_attack(config: AttackConfig) -> Callable[..., Tensor]:
    """The training attack: ``attack(model, x, y, **options) -> x*``, the inner maximisation
    (:func:`nofrost.methods.inner_max.inner_pgd`, the shared sign-gradient loop) with the
    training settings (``attack.eps``, ``steps``, ``step_size``, ``precision``, ``random_start``
    and the eval/train mode) unless an option overrides one.

    Options: ``loss`` ("ce" or "kl"), ``start`` ("uniform", "normal" or "none"; default uniform,
    or none without ``attack.random_start``), ``tau`` (FAT's early stop), ``steps``,
    ``step_size`` and ``train_mode``.
    """
    from nofrost.methods.inner_max import inner_pgd

    def attack(
        model: nn.Module,
        x: Tensor,
        y: Tensor,
        *,
        loss: str = "ce",
        start: str | None = None,
        tau: int | None = None,
        steps: int | None = None,
        step_size: float | None = None,
        train_mode: bool | None = None,
    ) -> Tensor:
        x_adv, _ = inner_pgd(
            model, x, y, config.eps,
            steps=config.steps if steps is None else steps,
            step_size=config.step_size if step_size is None else step_size,
            loss=loss, tau=tau,
            start=start if start is not None else ("uniform" if config.random_start else "none"),
            precision=config.precision,
            train_mode=config.train_mode() if train_mode is None else train_mode,
        )  # fmt: skip
        return x_adv

    return attack


def clean_and_adversarial_logits(model: nn.Module, x: Tensor, x_adv: Tensor, ctx: StepContext) -> tuple[Tensor, Tensor]:
    """``(model(x), model(x_adv))`` under the step's autocast: one pass over the concatenated
    batch when ``ctx.fuse_clean_adv`` (no layer mixes examples), else two passes."""
    logits_clean, logits_adv = joint_logits(model, [x, x_adv], ctx)
    return logits_clean, logits_adv


def joint_logits(model: nn.Module, batches: list[Tensor], ctx: StepContext) -> list[Tensor]:
    """``[model(b) for b in batches]`` under the step's autocast: one pass over the
    concatenated batches when ``ctx.fuse_clean_adv`` (no layer mixes examples), else one pass
    per batch, so batch norm never mixes their statistics."""
    with ctx.autocast():
        if ctx.fuse_clean_adv:
            return list(model(torch.cat(batches)).split([len(b) for b in batches]))
        return [model(b) for b in batches]


def cross_entropy(logits: Tensor, y: Tensor, ctx: StepContext) -> Tensor:
    return torch.nn.functional.cross_entropy(logits.float(), y, label_smoothing=ctx.label_smoothing)
