"""Adversarial-training throughput: a loop following the reference recipe vs our trainer's step.

Both run in this one process, on the same model (same initial weights), the same synthetic
batch already on the device, the same PGD-K and λ; they alternate in rounds so drifting clocks
or a busy machine hit both alike. Printed and written to ``--out``: images/s (median over
rounds), peak device memory per image (CUDA), and each arm's speed relative to the reference.

The reference loop is ours, written after the published NoFrost training script
(amazon-science/normalizer-free-robust-training, ``PGDAT.py``): fp32 (TF32 convolutions and
cudnn.benchmark on CUDA), NCHW tensors, the clean forward first with its graph kept alive
through the attack, PGD in eval mode with parameter gradients off (the ``ctx_noparamgrad_and_eval``
of advertorch, whose PGD sums the loss and steps along ``delta.grad.sign()``), then a separate
adversarial forward and one backward of the mixed loss, and ``.item()`` metrics every step.

Our arm is :class:`nofrost.train.loop.TrainingStep`, the exact step the trainer runs. The
``--ablate`` arms switch one of its speed paths off each: the fused clean+adversarial pass,
channels_last, bf16 (CUDA) and torch.compile (CUDA), to show where the time goes; on CPU they
also switch on the paths that are off there by default (``runtime.cpu_bf16``, and with
``--compile`` torch.compile).

    python benchmarks/train_throughput.py --device cpu          # < 2 min here
    python benchmarks/train_throughput.py --device cpu --ablate --compile --batch 64 --steps 3 --norm bn   # the quickstart's step
    python benchmarks/train_throughput.py --device cuda         # nf_resnet50, 224 px, batch 128, PGD-10
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from nofrost.attacks.pgd import default_step_size  # noqa: E402
from nofrost.config import load_config  # noqa: E402
from nofrost.data import dataset_info  # noqa: E402
from nofrost.report.tables import Table  # noqa: E402
from nofrost.train.loop import build_model_for  # noqa: E402

from _report import alternate, device_name, publish, timing_arguments, timing_device, training_step  # noqa: E402

PRESETS = {
    # A small NF model that runs a few steps per arm in well under 2 minutes on 2 CPU cores.
    "cpu": dict(model="cifar_resnet10", norm="none", image_size=None, batch=64, steps=10),
    # The anchor: timm nf_resnet50, 224 px, batch 128, PGD-10, λ = 0.5.
    "cuda": dict(model="nf_resnet50", norm=None, image_size=224, batch=128, steps=10),
}


@contextlib.contextmanager
def no_param_grad_and_eval(model: torch.nn.Module):
    flags = [(p, p.requires_grad) for p in model.parameters()]
    was_training = model.training
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        model.train(was_training)
        for p, flag in flags:
            p.requires_grad_(flag)


def reference_step(model, optimizer, x, y, *, eps: float, alpha: float, steps: int, lam: float) -> dict:
    """One step of the published recipe (see the module docstring)."""
    model.train()
    logits = model(x)
    loss_clean = F.cross_entropy(logits, y)
    with no_param_grad_and_eval(model):
        delta = torch.empty_like(x).uniform_(-eps, eps)
        delta = (x + delta).clamp(0, 1) - x
        for _ in range(steps):
            delta.requires_grad_(True)
            loss = F.cross_entropy(model(x + delta), y, reduction="sum")
            loss.backward()
            step = alpha * delta.grad.sign()
            delta = ((delta.detach() + step).clamp(-eps, eps) + x).clamp(0, 1) - x
    logits_adv = model(x + delta)
    loss = (1 - lam) * loss_clean + lam * F.cross_entropy(logits_adv, y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return {
        "acc": (logits.argmax(1) == y).float().mean().item(),
        "acc_adv": (logits_adv.argmax(1) == y).float().mean().item(),
        "loss": loss.item(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    timing_arguments(parser, rounds=3)
    parser.add_argument("--model", help="model name (default: cifar_resnet10 NF on cpu, nf_resnet50 on cuda)")
    parser.add_argument("--norm", help="model.norm override (default: none on cpu)")
    parser.add_argument("--image-size", type=int, help="input size (ImageNet models; default 224 on cuda)")
    parser.add_argument("--batch", type=int, help="batch size (default: 64 on cpu, 128 on cuda)")
    parser.add_argument("--steps", type=int, help="PGD steps (default: 10)")
    parser.add_argument("--iters", type=int, default=2, help="timed steps per round (default: 2)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per arm first (compile happens here)")
    parser.add_argument("--ablate", action="store_true", help="also time our step with each speed path off")
    parser.add_argument("--compile", action="store_true",
                        help="with --ablate on CPU: also time torch.compile (each arm compiles first, ~30 s)")
    args = parser.parse_args(argv)

    device = timing_device(args)
    preset = PRESETS["cuda" if device.type == "cuda" else "cpu"]
    model_name = args.model or preset["model"]
    # The preset's norm belongs to the preset's model; another model keeps its own default.
    norm = args.norm if args.norm is not None else (preset["norm"] if model_name == preset["model"] else None)
    batch = args.batch or preset["batch"]
    steps = args.steps or preset["steps"]
    image_size = args.image_size or preset["image_size"]
    data = "cifar10-mini" if model_name.startswith("cifar") else "imagenet"
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    overrides = [
        f"data.name={data}", f"model.name={model_name}", f"attack.steps={steps}", "method.name=sat", "method.lam=0.5",
        f"optim.batch_size={batch}", f"runtime.device={device}", "optim.lr=0.01", "runtime.cpu_bf16=false",
    ]
    if norm is not None:
        overrides.append(f"model.norm={norm}")
    if image_size is not None:
        overrides.append(f"data.image_size={image_size}")
    base = load_config("quickstart", overrides=overrides)
    info = dataset_info(data)
    size = image_size or info.image_size
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(batch, info.in_chans, size, size, generator=generator).to(device)
    y = torch.randint(0, info.num_classes, (batch,), generator=generator).to(device)
    eps = base.attack.eps
    alpha = default_step_size(eps, steps)  # the reference's step size, min(1.25ε, ε + 4/255) / steps

    arms: dict[str, object] = {}
    torch.manual_seed(0)
    ref_model = build_model_for(base).to(device)
    initial = {k: v.clone() for k, v in ref_model.state_dict().items()}
    ref_opt = torch.optim.SGD(ref_model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-5)
    arms["reference recipe"] = lambda: reference_step(ref_model, ref_opt, x, y, eps=eps, alpha=alpha, steps=steps, lam=0.5)

    def ours(label: str, extra: list[str]) -> None:
        step = training_step(load_config("quickstart", overrides=[*overrides, *extra]), device, initial)
        arms[label] = lambda: step(x, y)

    ours("nofrost TrainingStep", [])
    if args.ablate:
        ours("  without fused clean+adv pass", ["runtime.fused_forward=false"])
        ours("  without channels_last", ["runtime.channels_last=false"])
        if device.type == "cuda":
            ours("  without bf16", ["runtime.bf16=false"])
            ours("  without torch.compile", ["runtime.compile=false"])
        else:  # the CPU speed paths that are off by default
            ours("  with runtime.cpu_bf16", ["runtime.cpu_bf16=true"])
            ours("  with runtime.cpu_bf16, without channels_last", ["runtime.cpu_bf16=true", "runtime.channels_last=false"])
            if args.compile:
                ours("  with torch.compile", ["runtime.compile=true"])
                ours("  with torch.compile and runtime.cpu_bf16", ["runtime.compile=true", "runtime.cpu_bf16=true"])

    peak: dict[str, float] = {}

    def measured(name, run):  # each arm's peak memory per image too (CUDA)
        def call():
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            run()
            if device.type == "cuda":
                peak[name] = max(peak.get(name, 0.0), torch.cuda.max_memory_allocated(device) / 2**20 / batch)
        return call

    warmup: dict[str, float] = {}
    seconds = alternate({name: measured(name, run) for name, run in arms.items()}, device, rounds=args.rounds,
                        warmup=args.warmup, iters=args.iters, warmup_seconds=warmup)
    times = {name: [batch / s for s in per_round] for name, per_round in seconds.items()}

    ref_speed = statistics.median(times["reference recipe"])
    table = Table(["arm", "images/s", "× reference", "warm-up s", "peak MiB/image"])
    results = []
    for name in arms:
        speed = statistics.median(times[name])
        table.add(name, f"{speed:.1f}", f"{speed / ref_speed:.2f}", f"{warmup[name]:.1f}",
                  f"{peak[name]:.1f}" if name in peak else "n/a (CPU)")
        results.append({"arm": name.strip(), "images_per_s": speed, "all_rounds": times[name],
                        "ratio": speed / ref_speed, "warmup_seconds": warmup[name], "peak_mib_per_image": peak.get(name)})
    card = device_name(device)
    header = (
        f"{model_name} ({'norm ' + norm if norm else 'default norm'}), {size} px, batch {batch}, PGD-{steps}, λ = 0.5, "
        f"synthetic data on the device. Device: {card}"
        f"{f', {torch.get_num_threads()} CPU thread(s)' if device.type == 'cpu' else ''}; torch {torch.__version__}. "
        f"Median of {args.rounds} rounds × {args.iters} steps after {args.warmup} warm-up step(s) "
        f"(their time, where compilation happens, in \"warm-up s\").\n\n"
    )
    publish(header + table.markdown(), args.out)
    if args.out:
        Path(args.out).with_suffix(".json").write_text(
            json.dumps({"device": card, "header": header.strip(), "results": results}, indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
