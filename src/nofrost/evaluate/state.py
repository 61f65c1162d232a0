"""Resumable evaluation: per-example progress written next to the result as it is made.

``evaluate(..., state_path=P)`` records, after each of a batch's attacks and metrics, that
unit's per-example values in ``P`` (written atomically; plain
tensors, strings and numbers, read back with ``torch.load(weights_only=True)``). With
``resume=True`` the units already in ``P`` are taken from it instead of being computed again.
Since every attack and metric is seeded per batch, the resumed result equals an uninterrupted
one. ``P`` also records what was being evaluated (a fingerprint of the model's weights, the
data, attacks, metrics, ε, norm, seed, batch size and precision); resuming anything else is
refused with the differences named. The caller removes ``P`` once the result is written.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from nofrost.files import atomic_torch_save

__all__ = ["EvaluationState", "model_fingerprint", "state_path_for"]

FORMAT = "nofrost-eval-state-v1"


def state_path_for(result_path: str | Path, process: int | None = None) -> Path:
    """Where the progress of an evaluation into ``result_path`` lives: ``eval.json`` →
    ``eval.state.pt``, or ``eval.state.rank<k>.pt`` for process ``k`` of a torchrun launch."""
    path = Path(result_path)
    return path.with_name(path.stem + (".state.pt" if process is None else f".state.rank{process}.pt"))


def model_fingerprint(model: nn.Module) -> str:
    """SHA-256 of the model's parameters and buffers (names, shapes, dtypes and values)."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype};".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class EvaluationState:
    """The per-(batch, unit) values of one evaluation, kept in a file as they are made."""

    def __init__(self, path: str | Path, fingerprint: dict[str, Any], *, resume: bool) -> None:
        self.path = Path(path)
        self.fingerprint = fingerprint
        self.units: dict[str, Tensor] = {}
        if self.path.exists():
            if not resume:
                raise FileExistsError(
                    f"{str(self.path)!r} holds the progress of an interrupted evaluation; continue it with "
                    "--resume, or delete the file to start over"
                )
            self._load()
        elif resume:
            raise FileNotFoundError(f"--resume: no interrupted evaluation at {str(self.path)!r} (nothing to continue)")

    def _load(self) -> None:
        try:
            saved = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 - a damaged or foreign file: one clear message
            raise ValueError(f"{str(self.path)!r} is not a readable evaluation state ({error}); delete it to start over") from None
        if not isinstance(saved, dict) or saved.get("format") != FORMAT:
            raise ValueError(f"{str(self.path)!r} is not a nofrost evaluation state; delete it to start over")
        before = saved.get("fingerprint", {})
        changed = sorted(k for k in {*before, *self.fingerprint} if before.get(k) != self.fingerprint.get(k))
        if changed:
            details = "; ".join(f"{k}: was {before.get(k)!r}, now {self.fingerprint.get(k)!r}" for k in changed
                                if k != "model") + ("; the model's weights differ" if "model" in changed else "")
            raise ValueError(f"--resume: {str(self.path)!r} belongs to another evaluation ({details.strip('; ')}); "
                             "use the same model and options, or delete it to start over")
        self.units = dict(saved["units"])

    def get(self, batch: int, unit: str) -> Tensor | None:
        return self.units.get(f"{batch}/{unit}")

    def put(self, batch: int, unit: str, values: Tensor) -> Tensor:
        """Record ``values`` (CPU) for ``unit`` of ``batch`` and write the file; returns them."""
        self.units[f"{batch}/{unit}"] = values.detach().cpu()
        atomic_torch_save({"format": FORMAT, "fingerprint": self.fingerprint, "units": self.units}, self.path)
        return self.units[f"{batch}/{unit}"]

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
