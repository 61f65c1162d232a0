"""Which precision the training step runs in on a device: bf16 autocast or fp32.

On CUDA, ``runtime.bf16`` turns bf16 autocast on for the loss forwards (the training attack keeps
``attack.precision``). On CPU, bf16 pays only where the CPU has native bf16 instructions (AMX or
AVX512-BF16, which oneDNN uses); elsewhere it is emulated and slower than fp32. So
``runtime.cpu_bf16`` puts the whole step, loss forwards and training attack, under bf16 autocast
on such CPUs only, and the trainer says when it falls back to fp32. The measured speed-ups are in
``docs/scaling.md``.
"""

from __future__ import annotations

import torch

from nofrost.config import RuntimeConfig


def cpu_has_native_bf16() -> bool:
    """Whether this CPU has AMX or AVX512-BF16 (torch's own capability probes; False when this
    torch build has none)."""
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def step_uses_bf16(runtime: RuntimeConfig, device: torch.device) -> bool:
    """Whether the training step's loss forwards run under bf16 autocast on ``device``."""
    if device.type == "cuda":
        return runtime.bf16
    return device.type == "cpu" and runtime.cpu_bf16 and cpu_has_native_bf16()


def attack_in_bf16(runtime: RuntimeConfig, device: torch.device) -> bool:
    """Whether the training attack runs in bf16 whatever ``attack.precision`` says: on a CPU
    step under ``runtime.cpu_bf16``."""
    return device.type == "cpu" and step_uses_bf16(runtime, device)


def cpu_bf16_fallback_note(runtime: RuntimeConfig, device: torch.device) -> str | None:
    """The line the trainer prints when ``runtime.cpu_bf16`` was asked for but cannot pay off."""
    if device.type != "cpu" or not runtime.cpu_bf16 or cpu_has_native_bf16():
        return None
    return ("runtime.cpu_bf16: this CPU has no native bf16 (AMX or AVX512-BF16), where bf16 is slower "
            "than fp32; training in fp32")
