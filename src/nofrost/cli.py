"""The ``nofrost`` command: parse arguments, call the library, print results. Nothing more."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from nofrost import __version__
from nofrost.console import progress_enabled

EPILOG = """examples:
  nofrost quickstart                                   # BN+SAT vs NoFrost on built-in data, CPU, minutes
  nofrost train --preset cifar10-nofrost --set data.root=cifar10_jpeg.npz --out runs/nf
  nofrost train --out runs/nf --resume                 # continue an interrupted run
  torchrun --nproc_per_node=8 -m nofrost train --preset imagenet-nofrost-r50 \
      --set data.root=/data/imagenet --out runs/nf50       # 8 GPUs, global batch 256
  nofrost evaluate runs/nf --data cifar10-mini --attacks clean,pgd --eps 8/255
  nofrost evaluate runs/nf --data cifar10-mini --norm l2 --eps 0.5 --attacks autoattack:version=fast
  nofrost evaluate runs/nf --data cifar10-mini --attacks clean --metrics margin,thickness,smoothness
  nofrost analyze runs/sat runs/nf --metrics margin,thickness,smoothness --bn-stats --out analysis
  nofrost sweep --preset quickstart --grid method.lam=0,0.5,1 --seeds 0,1,2 --out sweeps/lam
  nofrost report runs/nf runs/bn sweeps/lam -o report.html   # one page (+ report.md)
  nofrost reproduce table3 --scale cpu --out repro/table3     # a paper table by name (--list)
  nofrost gamma-sweep runs/mbnat --data cifar10-mini --nofrost runs/nf   # MBNAT trade-off curve
  nofrost list                                         # models, attacks, methods, presets, datasets
"""


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a model from a preset/config into a run directory",
        description="Train a model. The config is a preset, then --config FILE on top, then --set "
        "overrides; the resolved config is saved as OUT/config.yaml. After training, the model is "
        "evaluated with the config's eval section and OUT/eval.json is written. For several GPUs or "
        "nodes, start it with torchrun (torchrun --nproc_per_node=K -m nofrost train ...): "
        "optim.batch_size is then the global batch, split evenly among the K processes.",
    )
    p.add_argument("--preset", help="preset name (see `nofrost list`), e.g. cifar10-nofrost")
    p.add_argument("--config", help="YAML file laid over the preset")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config value, e.g. --set optim.epochs=5 --set attack.eps=8/255 (repeatable)")
    p.add_argument("--out", required=True, help="run directory to write (config, metrics, checkpoints, model)")
    p.add_argument("--resume", nargs="?", const="run", default=None, metavar="auto",
                   help="continue the run in --out from its last finished epoch (config from OUT/config.yaml); "
                   "--resume auto (with --preset/--config): start fresh when OUT has no checkpoint and continue "
                   "when it has one from the same config, the switch for torchrun --max-restarts and preemptible jobs")
    p.add_argument("--no-eval", action="store_true", help="skip the evaluation after training")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="measure clean and adversarial accuracy of a model",
        description="Evaluate MODEL (a run directory, a checkpoint written by nofrost, or an official "
        "NoFrost/timm ImageNet checkpoint) under a list of attacks. Each attack runs on the examples "
        "classified correctly; the worst case counts an example robust only if every attack failed. "
        "White-box PGD runs 20 steps unless given, e.g. pgd:steps=50:restarts=5. A self-audit always "
        "runs and prints warnings that say what a failed check likely means and what to run next.",
    )
    p.add_argument("model", help="run directory, checkpoint.pt, or official .pth state dict")
    p.add_argument("--data", required=True, metavar="NAME[:ROOT]", action="append",
                   help="dataset name and, where needed, its root, e.g. cifar10-mini or cifar10:/data/cifar10_jpeg.npz; "
                   "a corruption benchmark (cifar10-c:ROOT, imagenet-c:ROOT) is evaluated at every corruption and "
                   "severity, see --corruptions; repeat --data to evaluate several distribution-shift datasets in "
                   "one call (the OOD columns of the paper's Figures 3-4: imagenet-c, imagenet-r, imagenet-sketch); "
                   "see `nofrost list` and docs/ood.md")
    p.add_argument("--corruptions", default=None, metavar="LIST",
                   help="corruption benchmarks only: the corruptions to evaluate, comma-separated, e.g. fog,snow, or "
                   "benchmark (the 15 of mCE), extra (the other 4), all (default)")
    p.add_argument("--severities", default=None, metavar="LIST",
                   help="corruption benchmarks only: severities in 1-5, e.g. 1,3 (default: all five)")
    p.add_argument("--clean-root", default=None, metavar="DIR",
                   help="imagenet-c only: the ImageNet folder whose val images ImageNet-C corrupts; the accuracy "
                   "on them, uncorrupted, is measured too, and with it the relative mCE (default: the run's "
                   "data.root when it trained on imagenet)")
    p.add_argument("--split", default="test", help="dataset split (default: test)")
    p.add_argument("--n", type=int, default=None,
                   help="evaluate a class-stratified subset of N examples (per corruption and severity for a "
                   "corruption benchmark)")
    p.add_argument("--classes", default=None, metavar="LIST",
                   help="keep only these classes (before --n), e.g. 0-9 or 0-4,7; the NoFrost paper measures "
                   "its model properties on the ImageNet validation images of classes 0-9 (500 images)")
    p.add_argument("--metrics", default=None, metavar="LIST",
                   help="per-example metrics to measure too, comma-separated, options as for attacks: margin "
                   "(decision margin), thickness (boundary thickness), smoothness (KL smoothness), e.g. "
                   "margin,thickness:beta=0.5; their means go into the result, the per-example values "
                   "beside the JSON (.npz); see `nofrost list`")
    p.add_argument("--attacks", default=None,
                   help="comma-separated attack specs and suites (default: strong = standard AutoAttack; clean, "
                   "the only choice, for a corruption benchmark); "
                   "suites: paper (the NoFrost paper's columns as its reference test.py measured them: PGD-20, "
                   "APGD-CE, APGD-DLR, MIA, CW-linf, RayS-400, Square-400, AA-fast with 20 steps), strong; "
                   "randomized models: autoattack:version=rand (EOT); options per attack, e.g. "
                   "pgd:steps=50:eot_iter=10; attacks: see `nofrost list`")
    p.add_argument("--norm", default="linf",
                   help="threat model: linf (default) or l2; attacks defined for ℓ∞ only (mifgsm, cw-linf, "
                   "rays, the paper suite) refuse l2")
    p.add_argument("--eps", default=None,
                   help="radius of the ε-ball: under linf a fraction of the pixel range (default 8/255), "
                   "under l2 the Euclidean length of the perturbation of [0, 1] images (default 0.5, "
                   "RobustBench's CIFAR-10 ℓ2 radius); a comma-separated list (8/255,12/255,16/255) "
                   "evaluates at each and writes an ε curve (JSON and PNG; the paper's Figure 7)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bf16", action="store_true",
                   help="bf16 passes (autocast; CUDA, or CPUs with bf16 units) for the attacks that keep their "
                   "strength in bf16 (PGD, APGD, ...); FAB-T, Square and RayS stay fp32, and every verdict is fp32; "
                   "`nofrost list` marks which")
    p.add_argument("--json", help="write the result here (default: MODEL/eval.json when MODEL is a run directory, "
                   "MODEL/eval-NAME.json for a distribution-shift dataset NAME, e.g. eval-cifar10-c.json); "
                   "the per-example progress is kept next to it (eval.state.pt) until the result is written")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted evaluation from its progress file (same model and options)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_quickstart(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "quickstart",
        help="train BN+SAT and NoFrost on built-in CIFAR-10 data and compare them (CPU, minutes)",
        description="Train the same small ResNet twice on the built-in cifar10-mini subset, once with "
        "batch norm and SAT and once normalizer-free with NoFrost, evaluate clean and PGD-20 accuracy "
        "on held-out images, print a table and write report.md and a chart into OUT.",
    )
    p.add_argument("--out", default="nofrost-quickstart", help="output folder (default: ./nofrost-quickstart)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override the quickstart preset, e.g. --set optim.epochs=2")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")


def _add_gamma_sweep(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gamma-sweep",
        help="evaluate an MBNAT model across test-time γ and plot the accuracy/robustness trade-off",
        description="Evaluate an MBNAT run (model.norm: mbn) at each γ, interpolating its clean (BN_c) and "
        "adversarial (BN_a) paths as in the paper's Appendix A, with NoFrost runs as points on the same "
        "axes (Figures 2 and 5). Attacks are white-box through the interpolation.",
    )
    p.add_argument("model", help="MBNAT run directory")
    p.add_argument("--data", required=True, metavar="NAME[:ROOT]", help="dataset, e.g. cifar10-mini")
    p.add_argument("--split", default="test")
    p.add_argument("--gammas", default="0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1",
                   help="comma-separated γ values in [0, 1] (default: 0 to 1 in steps of 0.1)")
    p.add_argument("--mode", default="logits", choices=["logits", "all", "random"],
                   help="logits: z = (1-γ)z_c + γz_a (default); all: mix every MBN layer; random: mix p%% of layers")
    p.add_argument("--p", type=float, default=50.0, help="percentage of mixed layers for --mode random")
    p.add_argument("--attacks", default="pgd", help="attack specs and suites as for evaluate (default: pgd = PGD-20)")
    p.add_argument("--eps", default="8/255")
    p.add_argument("--n", type=int, default=1000, help="class-stratified examples, the same for every point")
    p.add_argument("--nofrost", nargs="*", default=[], metavar="RUN", help="run directories drawn as single points")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default="gamma_sweep.json", help="result file (default: gamma_sweep.json)")
    p.add_argument("--plot", default="gamma_sweep.png", help="trade-off figure (default: gamma_sweep.png)")
    p.add_argument("--quiet", action="store_true")


def _add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="one page of results in the paper's layouts: runs, sweeps, ε curves, analyses",
        description="Report on run directories (`nofrost train`), sweeps (`nofrost sweep` folders, "
        "gamma_sweep.json), ε curves (`evaluate --eps a,b,c`), analyses (`nofrost analyze` folders), "
        "evaluation results (`evaluate --json`) and `nofrost reproduce` folders: each row labelled with what "
        "it is (method, normalization, model, data and budget), robustness in the layout of the paper's Tables "
        "1-3, 6 and 7 with the self-audit's verdicts, Table 4 (mean ± std over seeds), Table 5, and every "
        "figure the inputs allow. -o NAME.html writes one self-contained page (figures embedded) and the same "
        "content as NAME.md; -o NAME.md writes Markdown only. Figures for the Markdown go to NAME_figures/.",
    )
    p.add_argument("inputs", nargs="+", metavar="PATH", help="run directories, sweep or analysis folders, JSON results")
    p.add_argument("-o", "--output", default="report.html",
                   help="report file: .html (and .md beside it, the default report.html) or .md")
    p.add_argument("--title", help="the report's title (default: nofrost report, or the reproduced table's)")


def _add_analyze(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "analyze",
        help="why models are robust: decision margin, boundary thickness, smoothness, BN statistics",
        description="Measure models side by side on the same examples, into one folder (analysis.md, tables, "
        "figures). --metrics: the model properties of the NoFrost paper's Sec. 4.3 (Table 5 layout, Figure 6 "
        "histograms). --bn-stats: per-channel statistics of clean and adversarial images at every BN layer "
        "(normalizer-free models: at each block's first weight-standardised conv), their distance over depth, "
        "and the running statistics of one BN layer per BN model (Figure 1).",
    )
    p.add_argument("models", nargs="+", help="run directories (or anything `nofrost evaluate` takes)")
    p.add_argument("--data", default="cifar10-mini", metavar="NAME[:ROOT]", help="dataset (default: cifar10-mini)")
    p.add_argument("--split", default="test")
    p.add_argument("--n", type=int, default=500, help="class-stratified examples (default: 500, as the paper)")
    p.add_argument("--classes", default=None, metavar="LIST",
                   help="keep only these classes before --n, e.g. 0-9 (the paper: ImageNet val, classes 0-9)")
    p.add_argument("--metrics", default=None, metavar="LIST",
                   help="per-example metrics, e.g. margin,thickness,smoothness (see `nofrost list`)")
    p.add_argument("--bn-stats", action="store_true",
                   help="clean vs adversarial normalization statistics, and Figure 1's running statistics")
    p.add_argument("--layer", default="15",
                   help="BN layer of the running-statistics scatter: 1-based index in definition order, or its "
                   "name (default: 15, the paper's)")
    p.add_argument("--norm", default="linf", help="threat model of the adversarial images: linf or l2")
    p.add_argument("--eps", default=None, help="radius (default: 8/255 under linf, 0.5 under l2)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="nofrost-analysis", help="output folder (default: ./nofrost-analysis)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_sweep(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="train and evaluate a grid of settings over seeds; mean ± std and the trade-off curve",
        description="Train one run per grid setting and seed into OUT/<setting>/seed<k>, one after another, each "
        "evaluated as `nofrost train` does; then aggregate mean ± std over seeds per setting (the paper's Table 4) "
        "and draw the accuracy-robustness trade-off along the swept values (Figures 2 and 5). Re-running the same "
        "command skips finished runs and resumes interrupted ones. --print-commands prints each run's torchrun "
        "command instead of running it.",
    )
    p.add_argument("--preset", help="preset name (see `nofrost list`)")
    p.add_argument("--config", help="YAML file laid over the preset")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="an override for every run of the sweep")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="a swept key and its values, e.g. method.lam=0,0.25,0.5,0.75,1 (repeat for a grid)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds, e.g. 0,1,2 (default: 0)")
    p.add_argument("--out", required=True, help="sweep folder: runs, sweep.json, sweep.md and the trade-off plot")
    p.add_argument("--print-commands", action="store_true",
                   help="print the torchrun command of every run (for a cluster) and exit")
    p.add_argument("--nproc", type=int, default=1, help="--nproc_per_node in the printed commands (default: 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")


def _add_reproduce(sub: argparse._SubParsersAction) -> None:
    from nofrost.reproduce import SCALES, TARGETS

    listing = ", ".join(TARGETS)
    p = sub.add_parser(
        "reproduce",
        help="re-run a table or figure of the NoFrost paper by name, at a scale you choose",
        description="Train the runs of one of the paper's tables or figures, evaluate them as the paper did, run "
        "what the target measures after training (ε curves, γ sweeps, model properties, BN statistics) and write "
        f"OUT/report.html. Targets: {listing}. Scales: "
        + "; ".join(f"{s.name}: {s.describe}" for s in SCALES.values())
        + ". Re-running the same command skips finished steps. Only the imagenet scale is the paper's setting: "
        "smaller scales show what they show, not whether the paper's claims hold.",
    )
    p.add_argument("target", nargs="?", help="table1 ... table7, figure1 ... figure7 (omit with --list)")
    p.add_argument("--scale", default="cpu", choices=list(SCALES), help="how big the runs are (default: cpu)")
    p.add_argument("--out", help="output folder: runs, measurements, reproduce.json and report.html")
    p.add_argument("--data-root", help="the dataset folder for --scale cifar10 or imagenet")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="an override for every training run, e.g. optim.epochs=2 for a shorter try")
    p.add_argument("--shift-data", action="append", default=[], metavar="NAME[:ROOT]",
                   help="figures 3-4: a distribution-shift dataset to evaluate every run on (repeat), e.g. "
                   "imagenet-c:/data/imagenet-c; default: the corruptions generated from the test split "
                   "(cifar10-c-gen, imagenet-c-gen)")
    p.add_argument("--print-commands", action="store_true",
                   help="print the commands (training as torchrun) instead of running them, e.g. for a cluster")
    p.add_argument("--nproc", type=int, default=None,
                   help="--nproc_per_node of printed torchrun commands (default: 8 for imagenet, 1 for cifar10; "
                   "at cpu scale plain nofrost commands)")
    p.add_argument("--list", action="store_true", help="list the tables and figures and exit")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nofrost",
        description="Adversarial training without batch normalization (NoFrost) and robustness evaluation that audits itself.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"nofrost {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the full Python traceback of an error instead of its one-line message")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_quickstart(sub)
    _add_train(sub)
    _add_evaluate(sub)
    _add_report(sub)
    _add_analyze(sub)
    _add_sweep(sub)
    _add_gamma_sweep(sub)
    _add_reproduce(sub)
    sub.add_parser("list", help="list registered models, attacks, attack suites, training methods, presets and datasets")
    return parser


def _check_same_config(config, saved: Path) -> None:
    """``--resume auto`` continues a run only with the config it was started with."""
    from nofrost.config import load_config

    if not saved.is_file():
        raise FileNotFoundError(f"--resume auto: {str(saved)!r} is missing next to the checkpoint; resume with "
                                "--resume (no preset) or start a new run elsewhere")
    before, now = load_config(file=saved).to_dict(), config.to_dict()
    changed = sorted(f"{section}.{key}" for section in now if isinstance(now[section], dict)
                     for key in now[section] if before.get(section, {}).get(key) != now[section][key])
    changed += [key for key in now if not isinstance(now[key], dict) and before.get(key) != now[key]]
    if changed:
        raise ValueError(f"--resume auto: {str(saved.parent)!r} was started with another config "
                         f"(differs in {', '.join(changed)}); use the same flags, or another --out")


def _cmd_train(args: argparse.Namespace) -> int:
    from nofrost.config import load_config
    from nofrost.distributed import process_rank
    from nofrost.train import train
    from nofrost.workflows import evaluate_run

    out = Path(args.out)
    if args.resume not in (None, "run", "auto"):
        raise ValueError(f"--resume takes no value, or 'auto'; got {args.resume!r}")
    if args.resume == "auto":
        if not args.preset and not args.config:
            raise ValueError("--resume auto needs the same --preset/--config as the run's first start")
        config = load_config(args.preset, args.config, args.overrides)
        resume = (out / "checkpoint.pt").exists()
        if resume:
            _check_same_config(config, out / "config.yaml")
    elif args.resume:
        if args.preset or args.config:
            raise ValueError("--resume reads the config from the run directory; drop --preset/--config (use --set to change a value)")
        saved = out / "config.yaml"
        if not saved.is_file():
            raise FileNotFoundError(f"--resume: {str(saved)!r} does not exist; start a new run without --resume")
        config = load_config(file=saved, overrides=args.overrides)
    else:
        if not args.preset and not args.config:
            raise ValueError("give --preset NAME or --config FILE (see `nofrost list` for presets)")
        config = load_config(args.preset, args.config, args.overrides)
    if args.resume != "auto":
        resume = args.resume == "run"
    result = train(config, out, resume=resume, quiet=args.quiet)
    if process_rank() != 0:
        return 0  # under torchrun, rank 0 alone reports and evaluates
    print(f"trained {config.model.name} with {config.method.name} in {result.seconds:.0f} s -> {out}")
    if not args.no_eval:
        evaluation = evaluate_run(out, config, progress=progress_enabled(args.quiet))
        _print_evaluation(evaluation)
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from nofrost.attacks._common import check_norm
    from nofrost.distributed import init_distributed, launched_by_torchrun, resolve_device, shutdown_distributed
    from nofrost.epsilon import parse_eps

    norm = check_norm(args.norm)
    eps = [parse_eps(text, what="--eps", norm=norm) for text in (args.eps or DEFAULT_EPS[norm]).split(",")]
    datasets = [text.partition(":")[::2] for text in args.data]
    if args.corruptions is not None or args.severities is not None:
        from nofrost.evaluate.corruptions import corruption_datasets

        if not any(name in corruption_datasets() for name, _ in datasets):
            raise ValueError(f"--corruptions and --severities are for corruption benchmarks "
                             f"({', '.join(corruption_datasets())}); dataset {datasets[0][0]!r} has no corruptions")
    if args.clean_root is not None:
        from nofrost.evaluate.corruptions import relative_mce_datasets

        if not any(name in relative_mce_datasets() for name, _ in datasets):
            raise ValueError(f"--clean-root is for the relative mCE of {', '.join(relative_mce_datasets())}; "
                             f"--data {datasets[0][0]} has no reference clean error")
    if len(datasets) > 1:
        return _evaluate_shifts(args, datasets, eps, norm)
    name, root = datasets[0]
    device = resolve_device(args.device)
    # Under torchrun every process attacks its share of the batches; rank 0 reports and writes.
    context = init_distributed(device) if launched_by_torchrun() else None
    try:
        _evaluate_command(args, eps, norm, name, root, context.device if context else device, context)
    except BaseException:
        if context is not None:
            shutdown_distributed(context, wait=False)
        raise
    if context is not None:
        shutdown_distributed(context)
    return 0


def _evaluate_shifts(args, datasets: list[tuple[str, str]], eps, norm) -> int:
    """Several distribution-shift datasets in one call, each into its own RUN/eval-NAME.json,
    then one summary row (the OOD columns of the paper's Figures 3-4)."""
    from nofrost.data import describe_dataset
    from nofrost.distributed import launched_by_torchrun, resolve_device
    from nofrost.report.tables import shift_table

    names = [name for name, _ in datasets]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"--data {repeated[0]} is given twice; each dataset is evaluated once, into its own file")
    others = [name for name in names if not describe_dataset(name).distribution_shift]
    if others:
        raise ValueError(f"several --data are for distribution-shift datasets only; {others[0]!r} is not one "
                         "(evaluate it in its own call)")
    for flag, given in (("--json", args.json), ("--resume", args.resume), ("torchrun", launched_by_torchrun())):
        if given:
            raise ValueError(f"several --data write one RUN/eval-NAME.json each and run in one process; drop {flag}")
    if len(eps) > 1:
        raise ValueError("several --data are evaluated at one ε; give one --eps")
    for name, root in datasets:  # before the first evaluation, which may take hours
        entry = describe_dataset(name)
        path = entry.root_path(root or None)
        if path is not None and not path.exists():
            raise FileNotFoundError(f"{name} root {path} does not exist; {entry.layout}")
        if entry.variant("corruption") is not None:
            _check_corruption_options(args, name, context=None)
    device = resolve_device(args.device)
    results = []
    for name, root in datasets:
        print(f"\n== {name} ==")
        results.append(_evaluate_command(args, eps, norm, name, root, device, None))
    print(f"\n{args.model}: accuracy in % on each dataset (a corruption benchmark: the mean over its corruptions)")
    print(shift_table({str(args.model): results}).text())
    return 0


def _shift_json(args, name: str) -> Path | None:
    """Where a distribution-shift evaluation is written: --json, else RUN/eval-NAME.json (beside,
    not over, the run's own eval.json), else nowhere."""
    if args.json:
        return Path(args.json)
    return Path(args.model) / f"eval-{name}.json" if Path(args.model).is_dir() else None


def _check_corruption_options(args, name: str, context) -> None:
    """A corruption benchmark measures accuracy without attacks, in one process: refuse the
    options that would not apply."""
    refused = [flag for flag, given in (("--attacks " + str(args.attacks), args.attacks not in (None, "clean")),
                                        ("--metrics", args.metrics), ("--classes", args.classes),
                                        ("--resume", args.resume), ("--eps", args.eps), ("--bf16", args.bf16),
                                        ("torchrun", context is not None)) if given]
    if refused:
        raise ValueError(f"{name} is a corruption benchmark: it measures accuracy under each corruption and "
                         f"severity, without attacks, in one process; drop {refused[0]} (see docs/ood.md)")


def _evaluate_corruptions_command(args, name, root, device, context):
    from nofrost.evaluate.corruptions import evaluate_corruptions
    from nofrost.models import load_model

    _check_corruption_options(args, name, context)
    model = load_model(args.model, device=device)
    result = evaluate_corruptions(
        model, name, root or None, split=args.split, corruptions=args.corruptions, severities=args.severities, n=args.n,
        batch_size=args.batch_size, device=device, seed=args.seed, progress=progress_enabled(args.quiet),
        model_name=str(args.model), clean_root=_clean_root(args, name),
    )  # fmt: skip
    _print_corruptions(result)
    target = _shift_json(args, name)
    if target is not None:
        result.save(target)
        print(f"wrote {target}")
    return result


def _clean_root(args, name: str) -> str | None:
    """The folder of ``name``'s uncorrupted images for relative mCE: --clean-root, else the run's
    own data.root when it trained on that dataset, else None (no relative mCE, with a note)."""
    from nofrost.data import describe_dataset

    entry = describe_dataset(name)
    if not entry.has_relative_mce:
        return None
    if args.clean_root is not None:
        return args.clean_root
    saved = Path(args.model) / "config.yaml"
    if saved.is_file():
        from nofrost.config import load_config

        data = load_config(file=saved).data
        if data.name == entry.uncorrupted[0] and data.root:
            print(f"relative mCE: the uncorrupted images from the run's data.root, {data.root}", file=sys.stderr)
            return data.root
    print(f"note: no relative mCE without the uncorrupted {entry.uncorrupted[0]} images; give --clean-root DIR",
          file=sys.stderr)
    return None


def _print_corruptions(result) -> None:
    from nofrost.report.tables import corruption_table, percent

    print(f"{result.dataset}, {result.n} images in all; accuracy in % per corruption and severity")
    print(corruption_table(result).text())
    print(f"\nmean corruption accuracy ({len(result.corruptions)} corruptions): "
          f"{percent(result.mean_corruption_accuracy)}")
    if result.mce is not None:
        print(f"mCE (AlexNet-normalized, 15 benchmark corruptions): {percent(result.mce)}")
    if result.uncorrupted_accuracy is not None:
        print(f"accuracy on the same images uncorrupted: {percent(result.uncorrupted_accuracy)}")
    if result.relative_mce is not None:
        print(f"relative mCE (AlexNet-normalized): {percent(result.relative_mce)}")


def _evaluate_command(args, eps, norm, name, root, device, context):
    """Evaluate on one dataset, print and write the result (or ε curve), and return it."""
    from nofrost.data import describe_dataset, load_dataset, parse_classes
    from nofrost.evaluate import evaluate
    from nofrost.evaluate.eps_curve import eps_curve
    from nofrost.evaluate.state import state_path_for
    from nofrost.models import load_model
    from nofrost.models.norms import has_routed_layers

    entry = describe_dataset(name)
    if entry.variant("corruption") is not None:
        return _evaluate_corruptions_command(args, name, root, device, context)
    main_process = context is None or context.is_main
    model = load_model(args.model, device=device)
    if has_routed_layers(model) and main_process:
        print("note: a model with routed norms (mixture BN, MBNAT) is evaluated through its default "
              "route, the adversarial BNs (BN_a, γ = 1); "
              "`nofrost gamma-sweep` evaluates other operating points", file=sys.stderr)
    dataset = load_dataset(name, args.split, root or None)
    options = dict(
        attacks=args.attacks or ("clean" if entry.distribution_shift else "strong"), norm=norm, n=args.n,
        batch_size=args.batch_size, device=device, seed=args.seed, precision="bf16" if args.bf16 else "fp32", metrics=args.metrics,
        classes=parse_classes(args.classes) if args.classes is not None else None, distributed=context,
        progress=progress_enabled(args.quiet) and main_process, model_name=str(args.model), dataset_name=name,
        split=args.split,
    )  # fmt: skip
    run_dir = Path(args.model).is_dir()
    if len(eps) == 1:
        target = (_shift_json(args, name) if entry.distribution_shift
                  else Path(args.json) if args.json else (Path(args.model) / "eval.json" if run_dir else None))
        if args.resume and target is None:
            raise ValueError("--resume continues the evaluation written to --json (or RUN/eval.json); give --json")
        state = state_path_for(target, context.rank if context else None) if target is not None else None
        result = evaluate(model, dataset, eps=eps[0], state_path=state, resume=args.resume, **options)
        if main_process:
            _print_evaluation(result)
    else:
        if args.resume:
            raise ValueError("--resume is for one ε; an ε list is evaluated from the start")
        state = None
        result = eps_curve(model, dataset, eps, **options)
        if main_process:
            _print_eps_curve(result)
        target = Path(args.json) if args.json else (Path(args.model) / "eps_curve.json" if run_dir else None)
    if target is not None and main_process:
        result.save(target)
        print(f"wrote {target}")
        if len(eps) > 1:
            print(f"wrote {_eps_curve_figure(result, target.with_suffix('.png'))}")
    if state is not None:
        if context is not None:
            context.barrier()  # the result is written before any process drops its progress
        state.unlink(missing_ok=True)
    return result


def _print_eps_curve(curve) -> None:
    from nofrost.report.tables import audit_lines, eps_curve_table

    first = curve.results[0]
    print(f"{first.dataset} {first.split}, n={first.n}, {'ℓ2' if first.norm == 'l2' else 'ℓ∞'}; "
          f"robust accuracy in % as ε grows")
    print(eps_curve_table(curve).text())
    failed = [(r, line) for r in curve.results for line in audit_lines(r) if line.startswith("WARN")]
    print("\naudit: " + ("every check passed at every ε" if not failed else ""))
    for r, line in failed:
        print(f"  ε = {r.eps:.4g}: {line}")


def _eps_curve_figure(curve, path: Path) -> Path:
    from nofrost.report.figures import curves
    from nofrost.report.tables import eps_label

    norm = curve.results[0].norm
    linf = norm == "linf"
    series = {curve.results[0].attacks[label].display: curve.curve(label) for label in curve.labels}
    series["worst-case"] = curve.curve("worst-case")
    return curves([255 * e if linf else e for e in curve.eps], series, path,
                  xlabel="ε (/255)" if linf else "ε (ℓ2)", ylabel="robust accuracy (%)",
                  title=f"{curve.results[0].model}: {', '.join(eps_label(e, norm) for e in curve.eps)}",
                  dashed=["worst-case"])


def _print_evaluation(result) -> None:
    from nofrost.report.tables import audit_lines, evaluation_table, metrics_table, threat_model

    print(f"{result.dataset} {result.split}, n={result.n}, {threat_model(result)}; accuracy in %")
    print(evaluation_table([result]).text())
    if result.metrics:
        print("\nmetrics (mean over the examples):")
        print(metrics_table([result]).text())
    print("\naudit:")
    for line in audit_lines(result):
        print("  " + line)


def _cmd_quickstart(args: argparse.Namespace) -> int:
    from nofrost.workflows import quickstart

    summary = quickstart(args.out, overrides=args.overrides, quiet=args.quiet)
    print(summary.table.text())
    print(f"\nwrote {summary.report} and {summary.chart} ({summary.seconds:.0f} s in all)")
    return 0


def _cmd_gamma_sweep(args: argparse.Namespace) -> int:
    from nofrost.epsilon import parse_eps
    from nofrost.distributed import resolve_device
    from nofrost.evaluate.gamma_sweep import gamma_sweep
    from nofrost.report.tables import sweep_table
    from nofrost.report.tradeoff import tradeoff_plot

    try:
        gammas = [float(g) for g in args.gammas.split(",") if g.strip()]
    except ValueError:
        raise ValueError(f"--gammas {args.gammas!r}: expected comma-separated numbers such as 0,0.5,1") from None
    name, _, root = args.data.partition(":")
    result = gamma_sweep(
        args.model, name, gammas, attacks=args.attacks, eps=parse_eps(args.eps, what="--eps"), n=args.n,
        mode=args.mode, p=args.p, seed=args.seed, nofrost_runs=args.nofrost, batch_size=args.batch_size,
        device=resolve_device(args.device), data_root=root or None, split=args.split,
        progress=progress_enabled(args.quiet),
    )
    result.save(args.json)
    print(f"{result.name}, accuracies in %:\n{sweep_table(result).text()}")
    print(f"wrote {args.json} and {tradeoff_plot(result, args.plot)}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from nofrost.report import write_report

    written = write_report(args.inputs, args.output, title=args.title)
    print(f"wrote {', '.join(map(str, written))}")
    return 0


def _cmd_analyze(args: argparse.Namespace) -> int:
    from nofrost.analysis import analyze
    from nofrost.attacks._common import check_norm
    from nofrost.data import parse_classes
    from nofrost.distributed import resolve_device
    from nofrost.epsilon import parse_eps

    norm = check_norm(args.norm)
    eps = parse_eps(args.eps or DEFAULT_EPS[norm], what="--eps", norm=norm)
    name, _, root = args.data.partition(":")
    summary = analyze(
        args.models, args.out, data=name, data_root=root or None, split=args.split, n=args.n,
        classes=parse_classes(args.classes) if args.classes is not None else None, metrics=args.metrics,
        bn_stats=args.bn_stats, layer=args.layer, eps=eps, norm=norm, batch_size=args.batch_size,
        device=resolve_device(args.device), seed=args.seed, progress=progress_enabled(args.quiet),
    )  # fmt: skip
    for title, table in summary.tables.items():
        print(f"{title}:\n{table.text()}\n")
    print(f"wrote {summary.out / 'analysis.md'} and {', '.join(p.name for p in summary.figures.values())} "
          f"({summary.seconds:.0f} s)")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from nofrost.report.tables import sweep_table
    from nofrost.report.tradeoff import tradeoff_plot
    from nofrost.sweep import parse_grid, parse_seeds, plan_sweep, run_sweep, sweep_commands

    if not args.preset and not args.config:
        raise ValueError("give --preset NAME or --config FILE (see `nofrost list` for presets)")
    grid, seeds = parse_grid(args.grid), parse_seeds(args.seeds)
    planned = plan_sweep(grid, seeds, preset=args.preset, config_file=args.config, overrides=args.overrides)
    if args.print_commands:
        if args.nproc < 1:
            raise ValueError(f"--nproc must be at least 1, got {args.nproc}")
        print("\n".join(sweep_commands(planned, args.out, preset=args.preset, config_file=args.config,
                                       overrides=args.overrides, nproc=args.nproc)))
        return 0
    sweep = run_sweep(planned, args.out, grid, seeds, quiet=args.quiet)
    out = Path(args.out)
    table = sweep_table(sweep)
    print(table.text())
    figure = None
    if sweep.labels and len(sweep.settings) > 1:
        figure = tradeoff_plot(sweep, out / "tradeoff.png", attacks=[*sweep.labels, "worst-case"],
                               title=f"mean over seeds {', '.join(map(str, seeds))}")
    (out / "sweep.md").write_text(f"# nofrost sweep\n\nAccuracies in %, mean ± std over seeds.\n\n{table.markdown()}\n"
                                  + (f"\n![trade-off]({figure.name})\n" if figure else ""))
    print(f"wrote {out / 'sweep.json'}, {out / 'sweep.md'}" + (f" and {figure}" if figure else ""))
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from nofrost.reproduce import TARGETS, plan, reproduce, write_manifest

    if args.list or not args.target:
        for t in TARGETS.values():
            print(f"{t.name:11s} {t.title}")
        return 0
    if not args.out:
        raise ValueError("give --out DIR: the folder for the runs and the report")
    if args.nproc is not None and args.nproc < 1:
        raise ValueError(f"--nproc must be at least 1, got {args.nproc}")
    planned = plan(args.target, args.scale, args.out, data_root=args.data_root, overrides=args.overrides,
                   shift_data=args.shift_data)
    if args.print_commands:
        write_manifest(planned)
        nproc = args.nproc if args.nproc is not None else planned.scale.nproc
        print("\n".join(step.command(nproc) for step in planned.steps))
        print(f"nofrost report {shlex.quote(str(planned.out))} -o {shlex.quote(str(planned.out / 'report.html'))}")
        return 0
    written = reproduce(planned, quiet=args.quiet)
    print(f"wrote {', '.join(map(str, written))}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from nofrost import attacks, data, methods, models
    from nofrost.config import list_presets
    from nofrost.evaluate import list_suites
    from nofrost.evaluate.metrics import list_metrics, metric_info

    print("attacks (kind; threat models; precision under --bf16):")
    for name in attacks.list_attacks():
        info = attacks.attack_info(name)
        print(f"  {name:<12} {info.kind:<10} {', '.join(info.norms):<10} {info.precision('bf16')}")
    print("metrics (evaluate --metrics):")
    for name in list_metrics():
        print(f"  {name:<12} {metric_info(name).summary}")
    for title, names in (
        ("models", models.list_models()),
        ("attack suites", list_suites()),
        ("methods", methods.list_methods()),
        ("presets", list_presets()),
    ):
        print(f"{title}: {', '.join(names)}")
    print("datasets (--data NAME[:ROOT]; splits; variant options):")
    for name in data.list_datasets():
        entry = data.describe_dataset(name)
        variants = ", ".join(v.name for v in entry.variants) or "-"
        print(f"  {name:<16} {'/'.join(entry.splits):<11} {variants:<21} {entry.summary}")
    return 0


# --eps when not given, per --norm: the NoFrost paper's ℓ∞ radius and RobustBench's CIFAR-10 ℓ2 one.
DEFAULT_EPS = {"linf": "8/255", "l2": "0.5"}

COMMANDS = {
    "train": _cmd_train,
    "evaluate": _cmd_evaluate,
    "quickstart": _cmd_quickstart,
    "report": _cmd_report,
    "analyze": _cmd_analyze,
    "sweep": _cmd_sweep,
    "gamma-sweep": _cmd_gamma_sweep,
    "reproduce": _cmd_reproduce,
    "list": _cmd_list,
}


def main(argv: list[str] | None = None) -> int:
    from nofrost.train import TrainingDiverged

    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("\ninterrupted; what was finished is kept (finished epochs in the run directory, an evaluation's "
              "progress next to its result): run the same command with --resume to continue", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`nofrost list | head`): stop quietly, as other command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, TrainingDiverged) as err:
        # Errors raised by the library already say what went wrong and what to do.
        if args.debug:
            raise
        print(f"nofrost {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
