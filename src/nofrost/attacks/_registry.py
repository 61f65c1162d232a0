"""The attack registry: ``name -> attack(model, x, y, eps, **kwargs) -> x_adv``.

Kept in its own module (not in ``__init__``) so attack modules can import
:func:`register_attack` without a circular import of the package.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Protocol, TypeVar

from torch import Tensor, nn

from nofrost.attacks._common import NORMS
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
    attack has none.
    """

    name: str
    kind: str
    display: str
    budget: str | None = None
    paper_budget: int | None = None
    norms: tuple[str, ...] = ("linf",)
    on_correct: Callable[..., Tensor] | None = None


ATTACK_INFO: dict[str, AttackInfo] = {}

#: Arguments that the caller of an attack owns (evaluation or an ensemble sets them for every
#: attack it runs), as opposed to an attack's own options.
RESERVED: tuple[str, ...] = ("model", "x", "y", "eps", "generator", "precision", "num_classes", "norm")

F = TypeVar("F", bound=Callable[..., Tensor])


def register_attack(
    name: str,
    *,
    kind: str = "white-box",
    display: str | None = None,
    budget: str | None = "steps",
    paper_budget: int | None = None,
    norms: tuple[str, ...] = ("linf",),
    on_correct: Callable[..., Tensor] | None = None,
) -> Callable[[F], F]:
    """Decorator that registers an attack under ``name`` (one small module per attack), with
    its :class:`AttackInfo` (``display`` defaults to the name in capitals).

    The decorated function is returned unchanged (with its signature), so it can also be
    imported and called directly. Registering a name twice raises ValueError.
    """
    if kind not in KINDS:
        raise ValueError(f"attack {name!r}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    unknown = [norm for norm in norms if norm not in NORMS]
    if not norms or unknown:
        raise ValueError(f"attack {name!r}: norms must be a non-empty subset of {NORMS}, got {norms!r}")
    info = AttackInfo(name, kind, display or name.upper(), budget, paper_budget, tuple(norms), on_correct)

    def decorator(fn: F) -> F:
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
