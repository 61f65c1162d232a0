"""Every training method on the same small budget: cifar10-mini, cifar_resnet10, CPU.

Trains each arm with the quickstart's optimizer (SGD, lr 0.1 cosine, batch 128, weight decay
5e-4), the same network (``cifar_resnet10``, width 16; only the normalization differs where
the method needs it), the same data (a class-stratified ``--train-n`` of cifar10-mini's 10,000
training images), the same number of epochs and a PGD-``--steps`` training attack (ε = 8/255),
then evaluates clean and PGD-20 accuracy on ``--eval-n`` held-out test images (the same
images for every arm). MBNAT is evaluated at γ = 0, 0.5 and 1 (logits interpolation). Free AT
uses m = ``--epochs`` replays, so it runs one epoch and takes the same number of optimizer
steps as the others. Prints a Markdown table and writes it, with the raw results, to ``--out``.

Example (what docs/methods.md reports)::

    .venv/bin/python benchmarks/compare_methods.py --train-n 4000 --epochs 3 --steps 3 \\
        --eval-n 500 --threads 1 --out runs/compare_methods \\
        --table benchmarks/results/compare_methods_cpu.md

Run directories go to ``--out`` (git-ignored ``runs/`` by default); re-running with the same
``--out`` reuses finished runs and their evaluations.

``--arms`` also takes the NF initialisation ablations (``ABLATION_ARMS``, not run by default):
NoFrost on the CIFAR NF-ResNet with one of timm's initialisation choices undone at a time
(last-conv gain 1 instead of 0, stem gamma 1 instead of 1.7139, a strided 1x1 shortcut instead
of average pooling + 1x1), and all three at once. What docs/methods.md reports::

    .venv/bin/python benchmarks/compare_methods.py --train-n 10000 --epochs 5 --steps 3 \
        --eval-n 1000 --threads 1 --out runs/nf_init --arms nofrost,nf-unit-gain,nf-stem-gamma-1,nf-strided-shortcut,nf-all-three \
        --table benchmarks/results/nf_init_ablation_cpu.md
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from torch import nn  # noqa: E402

from nofrost import load_model  # noqa: E402
from nofrost.config import load_config  # noqa: E402
from nofrost.data import load_dataset  # noqa: E402
from nofrost.evaluate import evaluate  # noqa: E402
from nofrost.models import register_model  # noqa: E402
from nofrost.models.cifar_resnet import cifar_resnet10  # noqa: E402
from nofrost.models.mbn import interpolated  # noqa: E402
from nofrost.models.nf_layers import RELU_GAMMA  # noqa: E402
from nofrost.report.tables import Table, percent  # noqa: E402
from nofrost.train import train  # noqa: E402

# arm name, label, norm, method overrides
ARMS: list[tuple[str, str, str, list[str]]] = [
    ("st", "ST", "bn", ["method.name=st", "method.lam=null"]),
    ("sat", "SAT (λ = 0.5)", "bn", ["method.name=sat", "method.lam=0.5"]),
    ("nofrost", "NoFrost (SAT on NF)", "none", ["method.name=sat", "method.lam=0.5"]),
    ("pgdat", "PGD-AT (λ = 1)", "bn", ["method.name=pgdat", "method.lam=null"]),
    ("trades", "TRADES (β = 1)", "bn", ["method.name=trades", "method.lam=null"]),
    ("fat", "FAT (τ = 1)", "bn", ["method.name=fat", "method.lam=null"]),
    ("trades-fat", "TRADES-FAT (β = 1, τ = 1)", "bn", ["method.name=trades-fat", "method.lam=null"]),
    ("mbnat", "MBNAT (λ = 0.5)", "mbn", ["method.name=mbnat", "method.lam=0.5"]),
    ("sat-in", "SAT w/ IN", "in", ["method.name=sat", "method.lam=0.5"]),
    ("sat-gn", "SAT w/ GN", "gn", ["method.name=sat", "method.lam=0.5"]),
    ("fast-at", "Fast AT (FGSM-RS, α = 1.25ε)", "bn", ["method.name=fast-at", "method.lam=null"]),
    ("free-at", "Free AT", "bn", ["method.name=free-at", "method.lam=null"]),
]
MBNAT_GAMMAS = (0.0, 0.5, 1.0)


def _unit_last_gain(net: nn.Module) -> None:
    for block in net.blocks():
        block.conv2.gain.data.fill_(1.0)


def _stem_gamma_1(net: nn.Module) -> None:
    net.stem.scale /= RELU_GAMMA


def _strided_shortcut(net: nn.Module) -> None:
    for block in net.blocks():
        if block.shortcut is not None and not isinstance(block.shortcut.pool, nn.Identity):
            block.shortcut.pool, block.shortcut.conv.stride = nn.Identity(), (2, 2)


def _all_three(net: nn.Module) -> None:
    for undo in (_unit_last_gain, _stem_gamma_1, _strided_shortcut):
        undo(net)


def _register_nf_variant(name: str, undo) -> str:
    """A cifar_resnet10 whose NF initialisation has one timm choice undone (registered, so runs
    save and load like any model)."""

    @register_model(name)
    def factory(num_classes: int, **kwargs) -> nn.Module:
        model = cifar_resnet10(num_classes, **kwargs)
        undo(model.net)
        return model

    return name


NF_SAT = ["method.name=sat", "method.lam=0.5"]
ABLATION_ARMS: list[tuple[str, str, str, list[str]]] = [
    (arm, label, "none", [*NF_SAT, f"model.name={_register_nf_variant('cifar_resnet10_' + arm.replace('-', '_'), undo)}"])
    for arm, label, undo in (
        ("nf-unit-gain", "NoFrost, last-conv gain 1", _unit_last_gain),
        ("nf-stem-gamma-1", "NoFrost, stem gamma 1", _stem_gamma_1),
        ("nf-strided-shortcut", "NoFrost, strided 1x1 shortcut", _strided_shortcut),
        ("nf-all-three", "NoFrost, all three undone", _all_three),
    )
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-n", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3, help="PGD steps of the training attack")
    parser.add_argument("--eval-n", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--arms", default=",".join(a[0] for a in ARMS), help="comma-separated subset of the arms")
    parser.add_argument("--out", default="runs/compare_methods", help="folder for the run directories")
    parser.add_argument("--table", default=None, help="also write the Markdown table here (default: OUT/table.md)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    wanted = [a.strip() for a in args.arms.split(",") if a.strip()]
    arms = ARMS + ABLATION_ARMS
    unknown = sorted(set(wanted) - {a[0] for a in arms})
    if unknown:
        parser.error(f"unknown arm(s) {unknown}; available: {', '.join(a[0] for a in arms)}")

    test_set = load_dataset("cifar10-mini", "test")
    common = [
        "model.name=cifar_resnet10", f"data.train_n={args.train_n}", "data.eval_n=0", f"optim.epochs={args.epochs}",
        f"attack.steps={args.steps}", "runtime.device=cpu", f"runtime.seed={args.seed}",
        # The quickstart's recipe before its CPU speed-ups, as the recorded tables were made.
        "optim.batch_size=128", "data.augment=true", "runtime.cpu_bf16=false",
    ]
    started = time.perf_counter()
    rows = []
    for name, label, norm, method in arms:
        if name not in wanted:
            continue
        extra = [f"method.replays={args.epochs}"] if name == "free-at" else []
        config = load_config("quickstart", overrides=[*common, f"model.norm={norm}", *method, *extra])
        run = out / name
        print(f"== {label}: norm {norm}, {args.epochs} epochs on {args.train_n} images", file=sys.stderr, flush=True)
        done = (run / "model.safetensors").is_file() and (run / "result.json").is_file()
        if done:
            record = json.loads((run / "result.json").read_text())
        else:
            result = train(config, run, resume=(run / "checkpoint.pt").exists(), quiet=True)
            model = load_model(run)
            models = {None: model} if name != "mbnat" else {g: interpolated(model, g) for g in MBNAT_GAMMAS}
            evals = {}
            for gamma, m in models.items():
                e = evaluate(m, test_set, attacks=["pgd"], eps=config.attack.eps, n=args.eval_n, batch_size=250,
                             seed=args.seed, model_name=name)
                evals["-" if gamma is None else f"{gamma:g}"] = {
                    "clean": e.clean, "pgd": e.attacks["pgd"].accuracy, "n": e.n,
                    "audit_failed": [check.check for check in e.failed_checks],
                }
            record = {"name": name, "label": label, "norm": norm, "train_seconds": result.seconds, "evals": evals,
                      "config": config.to_dict()}
            (run / "result.json").write_text(json.dumps(record, indent=2) + "\n")
        for gamma, e in record["evals"].items():
            rows.append((label if gamma == "-" else f"{label}, γ = {gamma}", norm, e, record["train_seconds"]))
            print(f"   {rows[-1][0]}: clean {percent(e['clean'])}%, PGD-20 {percent(e['pgd'])}%", file=sys.stderr, flush=True)

    table = Table(["method", "norm", "clean %", "PGD-20 %", "train s", "audit"])
    for label, norm, e, seconds in rows:
        audit = "ok" if not e["audit_failed"] else "failed: " + ", ".join(e["audit_failed"])
        table.add(label, norm, percent(e["clean"]), percent(e["pgd"]), f"{seconds:.0f}", audit)
    header = (
        f"cifar10-mini, cifar_resnet10 (width 16), {args.train_n} training images, {args.epochs} epochs, "
        f"PGD-{args.steps} training attack, eps 8/255; evaluation: clean and PGD-20 on {rows[0][2]['n'] if rows else 0} "
        f"held-out test images. {torch.get_num_threads()} CPU thread(s), {platform.processor() or platform.machine()}, "
        f"torch {torch.__version__}; total {time.perf_counter() - started:.0f} s.\n\n"
    )
    markdown = header + table.markdown()
    table_path = Path(args.table) if args.table else out / "table.md"
    table_path.parent.mkdir(parents=True, exist_ok=True)
    table_path.write_text(markdown + "\n")
    print(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
