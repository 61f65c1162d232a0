"""What every benchmark script does with its result: name the device, print, write Markdown."""

from __future__ import annotations

import platform
from pathlib import Path

import torch


def device_name(device: torch.device) -> str:
    """The card's name on CUDA, the processor otherwise (what results must be labelled with)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


def publish(markdown: str, out: str | Path | None) -> None:
    """Print the result and, when ``out`` is given, write it there (folders created)."""
    print(markdown)
    if out:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(markdown + "\n")
