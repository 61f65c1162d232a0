"""Cost of one training step of each method of the NoFrost* comparison, side by side.

The arms are :class:`nofrost.train.loop.TrainingStep` with each method on the network it is
trained with (docs/methods.md): ST, SAT and Combine on the BN network, NoFrost and NoFrost* on
the normalizer-free one; the same real cifar10-mini batch, the same PGD-K, and the TDA view a
loader would make for the methods that use it. They alternate in rounds in this one process, so
a busy machine hits them alike; the table gives each step's time relative to SAT's.

    python benchmarks/method_cost.py --device cpu      # cifar_resnet10 (width 16), batch 128, PGD-3: the quickstart size
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from nofrost.config import load_config  # noqa: E402
from nofrost.data import load_dataset  # noqa: E402
from nofrost.data.tda import texture_debiased_batch  # noqa: E402
from nofrost.methods import method_label  # noqa: E402
from nofrost.report.tables import Table  # noqa: E402

from _report import alternate, device_name, publish, timing_arguments, timing_device, training_step  # noqa: E402

# (method, model.norm, extra overrides), as scripts/ood_cpu.sh trains them.
ARMS = (
    ("st", "bn", ["method.lam=0.0"]),
    ("sat", "bn", []),
    ("sat", "none", []),
    ("nofrost-star", "none", ["method.lam=null"]),
    ("combine", "bn", ["method.lam=null"]),
)
REFERENCE = "sat", "bn"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    timing_arguments(parser, rounds=5)
    parser.add_argument("--batch", type=int, default=128, help="batch size (default: 128)")
    parser.add_argument("--steps", type=int, default=3, help="PGD steps of the training attack (default: 3)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per arm first")
    args = parser.parse_args(argv)

    device = timing_device(args)
    data = load_dataset("cifar10-mini", "train")
    raw = data.images[: args.batch].to(device)
    x, y = raw.float().div(255), data.targets[: args.batch].to(device)
    views = {"tda": texture_debiased_batch(raw, torch.Generator().manual_seed(1))}

    arms, labels = {}, {}
    for method, norm, extra in ARMS:
        config = load_config("quickstart", overrides=[
            f"method.name={method}", f"model.norm={norm}", *extra, "model.width=16", f"optim.batch_size={args.batch}",
            f"attack.steps={args.steps}", f"runtime.device={device}", "runtime.cpu_bf16=false", "optim.lr=0.01"])
        torch.manual_seed(0)
        step = training_step(config, device)
        uses = set(getattr(step.method, "views", ()))
        arms[(method, norm)] = lambda step=step, uses=uses: step(x, y, {k: v for k, v in views.items() if k in uses})
        labels[(method, norm)] = method_label(method, norm)

    load_before = os.getloadavg()[0]
    seconds = alternate(arms, device, rounds=args.rounds, warmup=args.warmup)
    load_after = os.getloadavg()[0]
    reference = statistics.median(seconds[REFERENCE])
    table = Table(["method", "norm", "ms per step", "× SAT step"])
    results = []
    for key, per_round in seconds.items():
        median = statistics.median(per_round)
        table.add(labels[key], key[1], f"{1000 * median:.0f}", f"{median / reference:.2f}")
        results.append({"method": key[0], "norm": key[1], "seconds": median, "all_rounds": per_round,
                        "relative_to_sat": median / reference})
    card = device_name(device)
    cpu = (f", {torch.get_num_threads()} CPU thread(s), 1-min load average {load_before:.1f} before / "
           f"{load_after:.1f} after on {os.cpu_count()} cores") if device.type == "cpu" else ""
    header = (f"cifar_resnet10 (width 16), 32 px, batch {args.batch}, PGD-{args.steps}, fp32; real cifar10-mini "
              f"images. Device: {card}{cpu}; torch {torch.__version__}. Median of {args.rounds} rounds after "
              f"{args.warmup} warm-up step(s).\n\n")
    publish(header + table.markdown(), args.out)
    if args.out:
        Path(args.out).with_suffix(".json").write_text(
            json.dumps({"device": card, "header": header.strip(), "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
