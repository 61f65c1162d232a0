"""nofrost: adversarial training without batch normalization, and evaluation that audits itself."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def load_model(path: Any, device: Any = "cpu") -> Any:
    """Load a model from a run directory, a nofrost checkpoint or an official NoFrost checkpoint.

    See :func:`nofrost.models.load_model`; imported lazily so ``nofrost --help`` stays fast.
    """
    from nofrost.models import load_model as _load_model

    return _load_model(path, device=device)


__all__ = ["__version__", "load_model"]
