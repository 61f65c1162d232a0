"""Are bf16 attacks as strong as fp32 ones? Robust accuracy and time of the same attacks in both.

Evaluates one model with ``nofrost.evaluate`` twice, ``precision="fp32"`` and ``"bf16"``, on the
same images and seeds, and prints per-attack robust accuracy, the difference, the binomial
standard error of the fp32 figure, and the time of each run. bf16 is "not weaker" when its
robust accuracy is not above fp32's by more than that noise. In both runs the attacks work on
``evaluate``'s faster copy of the model (``attacks/_fast.py``: BN folded, channels_last), so on
a GPU this checks bf16 + channels_last evaluation against fp32.

    python benchmarks/attack_precision.py --device cpu --n 500 --out benchmarks/results/attack_precision_cpu.md
    python benchmarks/attack_precision.py --device cuda --n 1000
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from nofrost import load_model  # noqa: E402
from nofrost.data import load_dataset  # noqa: E402
from nofrost.evaluate import evaluate  # noqa: E402
from nofrost.report.tables import Table, percent  # noqa: E402

from _report import device_name, publish  # noqa: E402

DEFAULT_MODEL = ROOT / "tests" / "assets" / "cifar_resnet10_sat_bn"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="run directory or checkpoint")
    parser.add_argument("--data", default="cifar10-mini")
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--attacks", default="pgd,apgd-ce", help="attack specs (default: PGD-20, APGD-CE)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model = load_model(args.model, device=device)
    name, _, root = args.data.partition(":")
    dataset = load_dataset(name, "test", root or None)
    attacks = [a.strip() for a in args.attacks.split(",") if a.strip()]

    runs = {}
    for precision in ("fp32", "bf16"):
        started = time.perf_counter()
        runs[precision] = evaluate(model, dataset, attacks=attacks, n=args.n, batch_size=args.batch_size,
                                   device=device, seed=0, precision=precision, progress=False)
        runs[precision].seconds = time.perf_counter() - started
    fp32, bf16 = runs["fp32"], runs["bf16"]
    table = Table(["attack", "fp32 robust %", "bf16 robust %", "bf16 − fp32 (pp)", "± 1 SE (pp)", "differ"])
    rows = [(label, fp32.per_example.robust[label], bf16.per_example.robust[label]) for label in fp32.attacks]
    worst = (fp32.per_example.clean.clone(), bf16.per_example.clean.clone())
    for _, a, b in rows:
        worst[0].logical_and_(a)
        worst[1].logical_and_(b)
    for label, a, b in [*rows, ("worst_case", *worst)]:
        a_acc, b_acc = float(a.float().mean()), float(b.float().mean())
        se = 100 * math.sqrt(a_acc * (1 - a_acc) / fp32.n)
        table.add(label, percent(a_acc), percent(b_acc), f"{100 * (b_acc - a_acc):+.1f}", f"{se:.1f}",
                  int((a != b).sum()))
    card = device_name(device)
    header = (
        f"{args.model} on {fp32.n} {args.data} test images, eps 8/255, clean {percent(fp32.clean)}%. "
        f"Device: {card}; torch {torch.__version__}. Time: fp32 {fp32.seconds:.1f} s, bf16 {bf16.seconds:.1f} s "
        f"(including the audit). \"differ\": examples robust in one precision and not the other.\n\n"
    )
    publish(header + table.markdown(), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
