"""Training objectives, registered by name: each turns a batch into a loss.

A method never knows about the CLI or the trainer's loop; the trainer never knows which
method runs. Adding a method means adding one module that registers a factory.
"""

from nofrost.methods.base import METHODS, StepContext, StepOutput, TrainingMethod, build_method
from nofrost.methods import mixed as _mixed  # noqa: F401  (registers st, sat, pgdat)


def list_methods() -> list[str]:
    """Names of the registered training methods."""
    return METHODS.names()


__all__ = ["StepContext", "StepOutput", "TrainingMethod", "build_method", "list_methods"]
