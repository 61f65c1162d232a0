"""The attack registry: ``name -> attack(model, x, y, eps, **kwargs) -> x_adv``.

Kept in its own module (not in ``__init__``) so attack modules can import
:func:`register_attack` without a circular import of the package.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Protocol, TypeVar

import torch
from torch import Tensor, nn

from nofrost.attacks._common import NORMS, check_attack_inputs, check_generator, check_norm, check_precision
from nofrost.registry import Registry


class Attack(Protocol):
    """What every registered attack is.

    ``x`` is a float (N, C, H, W) batch in [0, 1], ``y`` int64 labels of shape (N,), ``eps``
    the radius of the threat model's ball: ℓ∞ as a fraction of the pixel range (8/255, not
    8), ℓ2 as the length of the perturbation (attacks with ``norm="l2"``). The result has the shape
    and dtype of ``x``, lies in [0, 1] and within ``eps`` of ``x``; the model's parameters,
    their ``requires_grad`` flags and every submodule's train/eval mode are unchanged
    afterwards, also when the attack raises.
    """

    def __call__(
        self, model: nn.Module, x: Tensor, y: Tensor, eps: float, **kwargs: Any
    ) -> Tensor: ...


ATTACKS: Registry[Callable[..., Tensor]] = Registry("attack")

#: What an attack can be: it reads gradients, only queries outputs, or runs other attacks.
KINDS = ("white-box", "black-box", "ensemble")


@dataclass(frozen=True)
class AttackInfo:
    """What the suites, the tables and the audit know about an attack, declared where it is
    registered.

    ``kind``: ``"white-box"`` (uses gradients), ``"black-box"`` (only the model's outputs; the
    audit checks that none is stronger than the white-box attacks) or ``"ensemble"``.
    ``display``: the short column header (``"PGD"``). ``budget``: the option holding the
    attack's budget (``"steps"``, ``"queries"``), shown in the header (``PGD-20``) unless it
    equals ``paper_budget``, the NoFrost paper's value for that attack. ``norms``: the threat
    models it is defined for (``"linf"``, ``"l2"``); every attack takes a ``norm=`` option and
    refuses the others. ``on_correct``: the attack's core on examples known to be classified
    correctly, ``on_correct(model, x, y, ball, clean_logits, num_classes, precision_ctx,
    generator=..., **options)`` with every option of the attack but the :data:`RESERVED`
    ones, for ensembles (AutoAttack) that already hold the clean logits; ``None`` if the
    attack has none. ``bf16``: whether its search keeps its strength with bf16 passes; one
    that does not (FAB-T and Square lose 4–5 points of robust accuracy on the SAT test model,
    ``benchmarks/results/attack_precision_cpu.md``) runs in fp32 whatever precision is asked.
    """

    name: str
    kind: str
    display: str
    budget: str | None = None
    paper_budget: int | None = None
    norms: tuple[str, ...] = ("linf",)
    on_correct: Callable[..., Tensor] | None = None
    bf16: bool = True

    def precision(self, asked: str) -> str:
        """The precision this attack runs at when ``asked`` is requested."""
        return asked if self.bf16 else "fp32"


ATTACK_INFO: dict[str, AttackInfo] = {}

#: Arguments that the caller of an attack owns (evaluation or an ensemble sets them for every
#: attack it runs), as opposed to an attack's own options.
RESERVED: tuple[str, ...] = ("model", "x", "y", "eps", "generator", "precision", "num_classes", "norm")

F = TypeVar("F", bound=Callable[..., Tensor])


@dataclass(frozen=True)
class Setup:
    """The options every attack takes, validated once by the base call (:func:`with_setup`).

    ``generator``: the source of all randomness, for reproducible results (``None``: the
    global RNG). ``precision``: ``"fp32"`` or ``"bf16"`` forward passes (losses are computed
    in fp32 either way). ``num_classes``: the model's number of classes if known (the labels
    are then checked up front; otherwise on the first forward pass). ``norm``: the threat
    model, ``"linf"`` or ``"l2"``.
    """

    generator: torch.Generator | None = None
    precision: str = "fp32"
    num_classes: int | None = None
    norm: str = "linf"


_SETUP_PARAMETERS = [
    inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY, default=field.default, annotation=field.type)
    for field in dataclasses.fields(Setup)
]


def with_setup(fn: Callable[..., Any], name: str, norms: tuple[str, ...], bf16: bool = True) -> Callable[..., Any]:
    """The base call of an attack ``fn(model, x, y, eps, setup, **options)``.

    Returns ``attack(model, x, y, eps, **options, generator=None, precision="fp32",
    num_classes=None, norm="linf")``: it validates the model, the images, the labels, ε for the
    norm (one of ``norms``), the generator and the precision (``bf16=False``: a request for
    bf16 runs in fp32, see :class:`AttackInfo`), and calls ``fn`` with them as a
    :class:`Setup`. Its signature (what ``inspect`` and the option checks see) is ``fn``'s with
    ``setup`` replaced by those four options.
    """
    parameters = list(inspect.signature(fn).parameters.values())
    if [p.name for p in parameters[:5]] != ["model", "x", "y", "eps", "setup"]:
        raise TypeError(f"attack {name!r} must take (model, x, y, eps, setup, *, options...)")

    @functools.wraps(fn)
    def attack(model, x, y, eps, *, generator=None, precision="fp32", num_classes=None, norm="linf", **options):
        eps, num_classes = check_attack_inputs(
            model, x, y, eps, num_classes, norm=norm, supported=norms, attack=name
        )
        precision = check_precision(precision)
        setup = Setup(check_generator(generator), precision if bf16 else "fp32", num_classes, norm)
        return fn(model, x, y, eps, setup, **options)

    attack.__signature__ = inspect.signature(fn).replace(  # type: ignore[attr-defined]
        parameters=parameters[:4] + parameters[5:] + _SETUP_PARAMETERS
    )
    return attack


def variant(
    base: Callable[..., Any],
    name: str,
    doc: str,
    *,
    fixed: Mapping[str, Any],
    defaults: Mapping[str, Any] | None = None,
    output: Callable[[Any], Any] | None = None,
    returns: Any = inspect.Signature.empty,
) -> Callable[..., Any]:
    """``base`` with the options in ``fixed`` set (and gone from its signature), other
    ``defaults``, and its result passed through ``output`` (then annotated as ``returns``):
    an attack that *is* another one with some options chosen (PGD^T is PGD with
    ``targeted=True``), written once."""
    signature = inspect.signature(base)
    parameters = [
        p.replace(default=(defaults or {}).get(p.name, p.default))
        for p in signature.parameters.values()
        if p.name not in fixed
    ]
    signature = signature.replace(parameters=parameters)
    if output is not None:
        signature = signature.replace(return_annotation=returns)

    def attack(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        result = base(*bound.args, **bound.kwargs, **fixed)
        return output(result) if output is not None else result

    attack.__name__ = attack.__qualname__ = name
    attack.__doc__ = doc
    attack.__signature__ = signature  # type: ignore[attr-defined]
    return attack


def _restricted(fn: Callable[..., Any], name: str, norms: tuple[str, ...]) -> Callable[..., Any]:
    """``fn`` refusing the norms outside ``norms`` (a variant of an attack that takes more)."""

    @functools.wraps(fn)
    def attack(*args: Any, **kwargs: Any) -> Any:
        check_norm(kwargs.get("norm", "linf"), norms, attack=name)
        return fn(*args, **kwargs)

    return attack


def register_attack(
    name: str,
    *,
    kind: str = "white-box",
    display: str | None = None,
    budget: str | None = "steps",
    paper_budget: int | None = None,
    norms: tuple[str, ...] = ("linf",),
    on_correct: Callable[..., Tensor] | None = None,
    bf16: bool = True,
) -> Callable[[F], F]:
    """Decorator that registers an attack under ``name`` (one small module per attack), with
    its :class:`AttackInfo` (``display`` defaults to the name in capitals).

    A function written as ``fn(model, x, y, eps, setup, *, options...)`` is wrapped in the
    base call (:func:`with_setup`), which validates the inputs and the options every attack
    shares; any other function (a :func:`variant`, an attack that validates itself) is
    registered as it is. The result can be imported and called directly. Registering a name
    twice raises ValueError.
    """
    if kind not in KINDS:
        raise ValueError(f"attack {name!r}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    unknown = [norm for norm in norms if norm not in NORMS]
    if not norms or unknown:
        raise ValueError(f"attack {name!r}: norms must be a non-empty subset of {NORMS}, got {norms!r}")
    info = AttackInfo(name, kind, display or name.upper(), budget, paper_budget, tuple(norms), on_correct, bf16)

    def decorator(fn: F) -> F:
        parameters = inspect.signature(fn).parameters
        if "setup" in parameters:
            fn = with_setup(fn, name, info.norms, info.bf16)  # type: ignore[assignment]
        elif "norm" in parameters and set(info.norms) != set(NORMS):
            fn = _restricted(fn, name, info.norms)  # type: ignore[assignment]
        ATTACKS.register(name)(fn)
        ATTACK_INFO[name] = info
        return fn

    return decorator


def attack_info(name: str) -> AttackInfo:
    """The :class:`AttackInfo` of registered attack ``name`` (ValueError listing them if unknown)."""
    ATTACKS.get(name)
    return ATTACK_INFO[name]


def attack_options(name: str) -> dict[str, Any]:
    """``{option: default}`` of registered attack ``name``: its keyword arguments but the
    :data:`RESERVED` ones (``inspect.Parameter.empty`` where there is no default)."""
    parameters = inspect.signature(get(name)).parameters
    return {key: p.default for key, p in parameters.items() if key not in RESERVED}


def get(name: str) -> Attack:
    """The attack registered as ``name``; unknown names raise ValueError listing the known ones."""
    return ATTACKS.get(name)


def list_attacks() -> list[str]:
    """Names of all registered attacks, sorted."""
    return ATTACKS.names()
