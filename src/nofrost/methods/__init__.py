"""Training objectives, registered by name: each turns a batch into a loss.

A method never knows about the CLI or the trainer's loop; the trainer never knows which
method runs. Adding a method means adding one module that registers a factory with
``register_method`` and importing it here. docs/methods.md lists every method, its formula,
its config fields and its preset.
"""

from nofrost.methods.base import (
    METHODS,
    StepContext,
    StepOutput,
    TrainingMethod,
    build_method,
    method_label,
    register_method,
)
from nofrost.methods import mixed as _mixed  # noqa: F401  (registers st, sat, pgdat)
from nofrost.methods import trades as _trades  # noqa: F401  (registers trades, trades-fat)
from nofrost.methods import fat as _fat  # noqa: F401  (registers fat)
from nofrost.methods import mbnat as _mbnat  # noqa: F401  (registers mbnat)
from nofrost.methods import fast_at as _fast_at  # noqa: F401  (registers fast-at)
from nofrost.methods import free_at as _free_at  # noqa: F401  (registers free-at)
from nofrost.methods import augmented as _augmented  # noqa: F401  (registers nofrost-star, deepaugment, tda, combine)


def list_methods() -> list[str]:
    """Names of the registered training methods."""
    return METHODS.names()


__all__ = ["StepContext", "StepOutput", "TrainingMethod", "build_method", "list_methods", "method_label",
           "register_method"]
