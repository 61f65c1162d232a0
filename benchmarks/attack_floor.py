"""The least time standard AutoAttack can take on a model's robust examples: passes × pass cost.

An example that no attack breaks costs every sub-attack its whole budget, and on CPU that
time is the model's: APGD-T makes 9 × 100 forward+backward passes over it, FAB-T 9 × 100
forward+backward passes plus a forward pass to check each new point, Square 5,000 forward
passes. So the model's pass cost at the batch of robust examples bounds each sub-attack's time
from below, for the official code (which runs the model as it is) and for ours (which runs the
faster copy of ``nofrost.attacks._fast``). Their ratio is the most any speed-up on those
examples can reach without cheaper arithmetic or fewer passes.

The passes are timed side by side in this process (alternating rounds) on real test images.
``--batch`` is the number of examples still robust when APGD-T starts (47 in
``benchmarks/results/eval_throughput_cpu.md``; 42 are left for FAB-T and Square).

    python benchmarks/attack_floor.py --device cpu --threads 1 --batch 42
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import nofrost  # noqa: E402
from nofrost.attacks._fast import fast_eval_copy  # noqa: E402
from nofrost.data import load_dataset, stratified_subset  # noqa: E402

from _report import alternate, device_name, publish, timing_arguments, timing_device  # noqa: E402

# (sub-attack, forward+backward passes, forward-only passes) per robust example, standard version
PASSES = (
    ("apgd-t", 9 * 100, 0),
    ("fab-t", 9 * 100, 9 * 100),
    ("square", 0, 5000 - 1),
)


def forward_pass(model, x):
    def run():
        with torch.no_grad():
            model(x)

    return run


def gradient_pass(model, x, y):
    def run():
        xg = x.clone().requires_grad_(True)
        torch.autograd.grad(F.cross_entropy(model(xg), y), xg)

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    timing_arguments(parser, rounds=5)
    parser.add_argument("--model", default=str(ROOT / "tests/assets/cifar_resnet10_sat_bn"))
    parser.add_argument("--batch", type=int, default=42, help="robust examples per pass (default: 42)")
    parser.add_argument("--iters", type=int, default=20, help="passes per arm and round (default: 20)")
    args = parser.parse_args(argv)

    device = timing_device(args)
    model = nofrost.load_model(args.model, device=device).eval()
    data = stratified_subset(load_dataset("cifar10-mini", "test"), args.batch)
    x = (data.images.float() / 255).to(device)
    y = data.targets.to(device)
    with torch.no_grad():
        fast = fast_eval_copy(model, x[:8], model(x[:8]))
    if fast is model:
        print("note: no faster copy of this model is made; both sides run it as it is")

    sides = {"official": model, "ours": fast}
    arms = {}
    for side, net in sides.items():
        arms[f"{side} forward"] = forward_pass(net, x)
        arms[f"{side} forward+backward"] = gradient_pass(net, x, y)
    seconds = alternate(arms, device, rounds=args.rounds, warmup=3, iters=args.iters)
    ms = {name: 1000 * statistics.median(values) for name, values in seconds.items()}

    floors = []
    for attack, grad_passes, fwd_passes in PASSES:
        row = {"attack": attack, "forward+backward passes": grad_passes, "forward passes": fwd_passes}
        for side in sides:
            row[side] = (grad_passes * ms[f"{side} forward+backward"] + fwd_passes * ms[f"{side} forward"]) / 1000
        floors.append(row)
    total = {side: sum(row[side] for row in floors) for side in sides}

    lines = [
        "# Standard AutoAttack's floor on robust examples: passes × pass cost",
        "",
        f"- command: `python benchmarks/attack_floor.py {' '.join(sys.argv[1:] if argv is None else argv)}`",
        f"- device: {device_name(device)}, {torch.get_num_threads()} thread(s), torch {torch.__version__}",
        f"- model: `{Path(args.model).name}`, batch of {args.batch} cifar10-mini test images, fp32",
        "",
        "| pass | official: the model (ms) | ours: the fast copy (ms) | × |",
        "|:---|---:|---:|---:|",
    ]
    for kind in ("forward", "forward+backward"):
        a, b = ms[f"official {kind}"], ms[f"ours {kind}"]
        lines.append(f"| {kind} | {a:.2f} | {b:.2f} | {a / b:.2f} |")
    lines += ["", "| sub-attack | passes (fwd+bwd / fwd) | official floor (s) | our floor (s) | × |",
              "|:---|---:|---:|---:|---:|"]
    for row in floors:
        lines.append(f"| {row['attack']} | {row['forward+backward passes']} / {row['forward passes']} | "
                     f"{row['official']:.1f} | {row['ours']:.1f} | {row['official'] / row['ours']:.2f} |")
    lines.append(f"| **in all** | | {total['official']:.1f} | {total['ours']:.1f} | "
                 f"**{total['official'] / total['ours']:.2f}** |")
    publish("\n".join(lines), args.out)
    if args.out:
        Path(args.out).with_suffix(".json").write_text(json.dumps(
            {"ms_per_pass": ms, "floors_s": floors, "total_s": total, "batch": args.batch}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
