"""torch.compile for the training step, with a fall-back to eager execution that warns.

A compiler failure (a missing C compiler, an unsupported op, an Inductor bug) should cost a
user speed, never a run: :class:`CompiledOrEager` runs the compiled module and, if that raises,
runs the same call eagerly. If eager succeeds, the failure was the compiler's: it warns once,
naming the error, and stays eager from then on. If eager fails too, the error is the user's
and eager's exception is raised.

The backward graph is compiled lazily, at the first ``backward()``, outside any module call;
the training step catches that failure and calls :meth:`CompiledOrEager.fall_back` itself
(see ``TrainingStep``).
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn


class CompiledOrEager(nn.Module):
    """``torch.compile(module)`` that falls back to ``module`` when compilation fails.

    The wrapped module is a child (through the compiled wrapper), so ``parameters()``,
    ``modules()``, ``train()``/``eval()`` and the attacks' state handling see the real layers.
    """

    def __init__(self, module: nn.Module, mode: str = "default", backend: Any = "inductor") -> None:
        super().__init__()
        self.compiled = torch.compile(module, mode=mode, backend=backend)
        self.eager_only = False  # set when compilation failed (or while a failed step is redone)
        self.failed: str | None = None  # the compiler error, once it failed

    @property
    def eager(self) -> nn.Module:
        return self.compiled._orig_mod

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self.eager_only:
            return self.eager(*args, **kwargs)
        try:
            return self.compiled(*args, **kwargs)
        except Exception as compiled_error:  # noqa: BLE001 - classified by the eager retry below
            out = self.eager(*args, **kwargs)
            self.fall_back(compiled_error)
            return out

    def fall_back(self, error: BaseException) -> None:
        """Run eagerly from now on, warning once with ``error`` as the reason."""
        self.eager_only = True
        if self.failed is not None:
            return
        self.failed = _describe(error)
        warnings.warn(
            f"torch.compile failed ({self.failed}); training continues without compilation "
            "(slower). Set runtime.compile=false to skip the attempt.",
            RuntimeWarning,
            stacklevel=3,
        )


def _describe(error: BaseException) -> str:
    """``Outer: root cause`` on one line (Dynamo wraps the real error in BackendCompilerFailed)."""
    root = error
    while (inner := getattr(root, "inner_exception", None) or root.__cause__) is not None:
        root = inner
    lines = str(root).strip().splitlines()
    text = f"{type(root).__name__}: {lines[0][:300] if lines else ''}"
    return text if root is error else f"{type(error).__name__}, caused by {text}"


def should_compile(setting: bool | str, device: torch.device) -> bool:
    """``runtime.compile`` resolved: ``"auto"`` compiles on CUDA only."""
    if setting == "auto":
        return device.type == "cuda"
    return bool(setting)
