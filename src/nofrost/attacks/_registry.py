"""The attack registry: ``name -> attack(model, x, y, eps, **kwargs) -> x_adv``.

Kept in its own module (not in ``__init__``) so attack modules can import
:func:`register_attack` without a circular import of the package.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, TypeVar

from torch import Tensor, nn

from nofrost.registry import Registry


class Attack(Protocol):
    """What every registered attack is.

    ``x`` is a float (N, C, H, W) batch in [0, 1], ``y`` int64 labels of shape (N,), ``eps``
    the ℓ∞ radius as a fraction of the pixel range (8/255, not 8). The result has the shape
    and dtype of ``x``, lies in [0, 1] and within ``eps`` of ``x``; the model's parameters,
    their ``requires_grad`` flags and every submodule's train/eval mode are unchanged
    afterwards, also when the attack raises.
    """

    def __call__(
        self, model: nn.Module, x: Tensor, y: Tensor, eps: float, **kwargs: Any
    ) -> Tensor: ...


ATTACKS: Registry[Callable[..., Tensor]] = Registry("attack")

F = TypeVar("F", bound=Callable[..., Tensor])


def register_attack(name: str) -> Callable[[F], F]:
    """Decorator that registers an attack under ``name`` (one small module per attack).

    The decorated function is returned unchanged (with its signature), so it can also be
    imported and called directly. Registering a name twice raises ValueError.
    """

    def decorator(fn: F) -> F:
        ATTACKS.register(name)(fn)
        return fn

    return decorator


def get(name: str) -> Attack:
    """The attack registered as ``name``; unknown names raise ValueError listing the known ones."""
    return ATTACKS.get(name)


def list_attacks() -> list[str]:
    """Names of all registered attacks, sorted."""
    return ATTACKS.names()
