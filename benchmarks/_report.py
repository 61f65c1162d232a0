"""What every benchmark script does with its result: name the device, print, write Markdown;
and the trainer's step the training benchmarks time."""

from __future__ import annotations

import platform
import time
from pathlib import Path

import torch


def device_name(device: torch.device) -> str:
    """The card's name on CUDA, the processor otherwise (what results must be labelled with)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    from nofrost.train.precision import cpu_has_native_bf16

    bf16 = "native bf16 (AMX or AVX512-BF16)" if cpu_has_native_bf16() else "no native bf16"
    return f"{platform.processor() or platform.machine()}, {bf16}"


def timing_arguments(parser, *, rounds: int) -> None:
    """The options of every side-by-side timing benchmark: device, rounds, threads, output."""
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--rounds", type=int, default=rounds, help=f"alternating timing rounds per arm (default: {rounds})")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--out", default=None, help="write the Markdown table here (and .json next to it)")


def timing_device(args) -> torch.device:
    """The device those options name, with the CPU threads set (and cuDNN's autotuner on, as
    in training)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    return device


def publish(markdown: str, out: str | Path | None) -> None:
    """Print the result and, when ``out`` is given, write it there (folders created)."""
    print(markdown)
    if out:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(markdown + "\n")


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA), so that wall-clock timings are complete."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def training_step(config, device: torch.device, state: dict | None = None):
    """The trainer's :class:`~nofrost.train.loop.TrainingStep` for ``config`` on a fresh model
    on ``device`` (with weights ``state`` when given), in train mode."""
    from nofrost.methods import build_method
    from nofrost.train.loop import TrainingStep, build_model_for
    from nofrost.train.optim import build_optimizer, build_schedule

    model = build_model_for(config).to(device)
    if state is not None:
        model.load_state_dict(state)
    optimizer = build_optimizer(model, config.optim)
    schedule = build_schedule(optimizer, config.optim, steps_per_epoch=10**6)
    step = TrainingStep.build(model, config, build_method(config.method, config.attack), optimizer, schedule)
    model.train()
    return step


def alternate(arms: dict, device: torch.device, *, rounds: int, warmup: int, iters: int = 1,
              warmup_seconds: dict[str, float] | None = None) -> dict[str, list[float]]:
    """Seconds per call of each arm (``{name: callable}``), one entry per round: every arm runs
    ``warmup`` calls first (their total time goes into ``warmup_seconds`` when given: where
    compilation happens), then the arms take turns for ``rounds`` rounds of ``iters`` calls, so
    that a drifting clock or a busy machine hits them alike."""
    warmed = {name: timed(run, warmup, device) for name, run in arms.items()}
    if warmup_seconds is not None:
        warmup_seconds.update(warmed)
    seconds: dict[str, list[float]] = {name: [] for name in arms}
    for _ in range(rounds):
        for name, run in arms.items():
            seconds[name].append(timed(run, iters, device) / iters)
    return seconds


def timed(run, calls: int, device: torch.device) -> float:
    """Wall seconds of ``calls`` calls of ``run``, the device's queued work included."""
    synchronize(device)
    started = time.perf_counter()
    for _ in range(calls):
        run()
    synchronize(device)
    return time.perf_counter() - started
