"""Our AutoAttack vs the official one (``pyautoattack``), side by side in one process.

Runs ``nofrost.attacks.autoattack.run_autoattack`` and ``pyautoattack.AutoAttack`` on the same
model, the same images and the same ε, with the same attack settings, and reports for each
version: wall time, images/s (images evaluated, clean-wrong ones included, per second), both
robust accuracies (each checked by our own forward pass on the returned points, which must
lie in the ε-ball) and the speed ratio (official time / ours).

Settings on both sides (ℓ∞):

* ``fast``: APGD-CE then APGD-DLR, 1 restart each (the official ``custom`` version with
  ``apgd.n_restarts = 1``; its default for ``custom`` would be 5 restarts).
* ``standard``: APGD-CE, APGD-T (9 targets), FAB-T (9 targets), Square (5,000 queries,
  ``p_init`` 0.8): the official ``version='standard'`` object as it comes.

``--steps`` / ``--queries`` shrink the budgets on both sides (a quicker, still like-for-like
comparison). Example (what ``benchmarks/results/eval_throughput_cpu.md`` was made with)::

    .venv/bin/python benchmarks/eval_throughput.py --device cpu --n 200 --version fast \\
        --threads 1 --out benchmarks/results/eval_throughput_cpu.md
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import statistics
import sys
import time
from fractions import Fraction
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import nofrost  # noqa: E402
from nofrost.attacks.autoattack import robust_accuracies, run_autoattack  # noqa: E402
from nofrost.data import load_dataset, stratified_subset  # noqa: E402


def parse_eps(text: str) -> float:
    value = float(Fraction(text))
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"eps must be in (0, 1] (e.g. 8/255), got {text}")
    return value


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def robust_of(model: torch.nn.Module, x: torch.Tensor, x_adv: torch.Tensor, y: torch.Tensor,
              eps: float, batch_size: int) -> torch.Tensor:
    """Our own check of a returned batch: in the ε-ball and [0, 1], then classified."""
    gap = float((x_adv - x).abs().max()) if len(x) else 0.0
    if gap > eps + 1e-6 or float(x_adv.min()) < 0 or float(x_adv.max()) > 1:
        raise RuntimeError(f"adversarial examples leave the ε-ball / [0, 1] (max gap {gap})")
    with torch.no_grad():
        pred = torch.cat([model(x_adv[i : i + batch_size]).argmax(1)
                          for i in range(0, len(x), batch_size)])
    return pred == y


def official_adversary(model, version: str, eps: float, seed: int, device: torch.device,
                       steps: int | None, queries: int | None):
    from pyautoattack import AutoAttack
    from pyautoattack.autopgd_base import APGDAttack, APGDAttack_targeted

    if version == "fast":
        adversary = AutoAttack(model, attacks=["apgd-ce", "apgd-dlr"], version="custom",
                               eps=eps, seed=seed, device=device)
        adversary.apgd.n_restarts = 1
    else:
        adversary = AutoAttack(model, version="standard", eps=eps, seed=seed, device=device)
    if steps is not None:  # n_iter fixes derived schedule lengths at construction: rebuild
        adversary.apgd = APGDAttack(model, n_iter=steps, norm="Linf", n_restarts=1, eps=eps,
                                    seed=seed, rho=0.75, device=device)
        adversary.apgd_targeted = APGDAttack_targeted(
            model, n_iter=steps, norm="Linf", n_restarts=1, eps=eps, seed=seed, rho=0.75,
            n_target_classes=9, device=device)
        adversary.fab.n_iter = steps
    if queries is not None:
        adversary.square.n_queries = queries
    return adversary


class OfficialAttackTimes(logging.Handler):
    """Seconds the official code spent in each of its sub-attacks, read from its own debug log
    ("robust accuracy after APGD-T: ... (total time 48.4 s)" is cumulative), without printing it."""

    _LINE = re.compile(r"robust accuracy after (\S+): .*\(total time ([0-9.]+) s\)")

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__(logging.DEBUG)
        self.seconds: dict[str, float] = {}
        self._total = 0.0
        logger.setLevel(logging.DEBUG)
        logger.disabled = False  # the logger is process-wide: whoever used it last may have disabled it
        logger.propagate = False
        logger.handlers = [self]

    def emit(self, record: logging.LogRecord) -> None:
        found = self._LINE.search(record.getMessage())
        if found:
            total = float(found.group(2))
            self.seconds[found.group(1).lower()] = total - self._total
            self._total = total


class AttackTimer:
    """Seconds spent in each of our sub-attacks: ``run_autoattack``'s ``on_attack_done``
    callback, timing from one call (the clean pass first) to the next."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds: dict[str, float] = {}
        self._last = 0.0

    def __call__(self, name: str, robust: torch.Tensor) -> None:
        sync(self.device)
        now = time.perf_counter()
        if name != "clean":
            self.seconds[name] = self.seconds.get(name, 0.0) + now - self._last
        self._last = now


def run_version(model, x, y, eps, version, args, device) -> dict:
    n = len(x)
    attack_kwargs = {}
    if args.queries is not None and version == "standard":
        attack_kwargs["square"] = {"queries": args.queries}
    times_ours, times_off, robust_sets = [], [], {"ours": [], "official": []}
    for repeat in range(args.repeats):  # alternate the two, so drifting load hits both
        sync(device)
        timer = AttackTimer(device)
        start = time.perf_counter()
        x_ours, masks = run_autoattack(
            model, x, y, eps, version=version, seed=args.seed, steps=args.steps,
            attack_kwargs=attack_kwargs or None, batch_size=args.batch_size, on_attack_done=timer,
            precision=args.precision,
        )  # fmt: skip
        sync(device)
        times_ours.append(time.perf_counter() - start)
        robust_ours = robust_of(model, x, x_ours, y, eps, args.batch_size)
        if not torch.equal(robust_ours, masks[list(masks)[-1]]):
            raise RuntimeError("our per-attack masks disagree with the returned points")
        robust_sets["ours"].append(robust_ours)
        print(f"[{version} {repeat + 1}/{args.repeats}] ours: {times_ours[-1]:.1f} s, robust "
              f"{float(robust_ours.float().mean()):.3f}, per attack "
              f"{ {k: round(v, 1) for k, v in timer.seconds.items()} }", flush=True)

        adversary = official_adversary(model, version, eps, args.seed, device, args.steps,
                                       args.queries)
        official_times = OfficialAttackTimes(adversary.logger)
        sync(device)
        start = time.perf_counter()
        x_off, _ = adversary.run_standard_evaluation(x, y, batch_size=args.batch_size)
        sync(device)
        times_off.append(time.perf_counter() - start)
        robust_off = robust_of(model, x, x_off, y, eps, args.batch_size)
        robust_sets["official"].append(robust_off)
        print(f"[{version} {repeat + 1}/{args.repeats}] official: {times_off[-1]:.1f} s, "
              f"robust {float(robust_off.float().mean()):.3f}", flush=True)

    for side, sets in robust_sets.items():
        if not all(torch.equal(sets[0], s) for s in sets):
            print(f"note: {side} robust sets differ between repeats", flush=True)
    t_ours = statistics.median(times_ours)
    t_off = statistics.median(times_off)
    robust_ours, robust_off = robust_sets["ours"][0], robust_sets["official"][0]
    return {
        "version": version,
        "n": n,
        "clean_accuracy": float(masks["clean"].float().mean()),
        "ours": {
            "seconds": t_ours,
            "seconds_each_repeat": times_ours,
            "seconds_per_attack_last_repeat": timer.seconds,
            "images_per_s": n / t_ours,
            "robust_accuracy": float(robust_ours.float().mean()),
            "after_each_attack": robust_accuracies(masks),
        },
        "official": {
            "seconds": t_off,
            "seconds_each_repeat": times_off,
            "seconds_per_attack_last_repeat": official_times.seconds,
            "images_per_s": n / t_off,
            "robust_accuracy": float(robust_off.float().mean()),
        },
        "speed_ratio": t_off / t_ours,
        "robust_gap_pp": 100 * float(robust_ours.float().mean() - robust_off.float().mean()),
        "broken_only_by_ours": int((~robust_ours & robust_off).sum()),
        "broken_only_by_official": int((robust_ours & ~robust_off).sum()),
    }


def _each(result: dict, side: str) -> str:
    return ", ".join(f"{t:.1f}" for t in result[side]["seconds_each_repeat"])


TITLE = "# AutoAttack throughput: nofrost vs official (pyautoattack)\n"


def markdown(results: list[dict], meta: dict) -> str:
    """One run's section: setup, the side-by-side table, per-attack details, raw JSON."""
    lines = [
        f"## {', '.join(r['version'] for r in results)} ({meta['repeats']} repeat(s), "
        f"median time)",
        "",
        f"- command: `{meta['command']}`",
        f"- machine: {meta['machine']}",
        f"- model: `{meta['model']}`, {meta['n']} images of cifar10-mini test "
        f"(stratified, seed 0), ε = {meta['eps']:.6f} (8/255 = 0.031373)",
        f"- torch {meta['torch']}, pyautoattack {meta['pyautoattack']}, "
        f"{meta['threads']} intra-op thread(s), seed {meta['seed']}, our passes in "
        f"{meta.get('precision', 'fp32')} (official: fp32)",
        f"- budgets: steps = {meta['steps'] or 'default (100)'}, "
        f"square queries = {meta['queries'] or 'default (5000)'}",
        "",
        "| version | clean | robust (ours) | robust (official) | gap (pp) | ours (s) | "
        "official (s) | ours (img/s) | official (img/s) | speed-up |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['version']} | {100 * r['clean_accuracy']:.1f}% "
            f"| {100 * r['ours']['robust_accuracy']:.1f}% "
            f"| {100 * r['official']['robust_accuracy']:.1f}% | {r['robust_gap_pp']:+.1f} "
            f"| {r['ours']['seconds']:.1f} | {r['official']['seconds']:.1f} "
            f"| {r['ours']['images_per_s']:.2f} | {r['official']['images_per_s']:.2f} "
            f"| {r['speed_ratio']:.2f}x |"
        )
    lines.append("")
    for r in results:
        after = ", ".join(f"{k} {100 * v:.1f}%" for k, v in r["ours"]["after_each_attack"].items())
        spent = {side: ", ".join(f"{k} {v:.1f} s" for k, v in r[side].get("seconds_per_attack_last_repeat", {}).items())
                 for side in ("ours", "official")}
        lines += [
            f"- {r['version']}: ours robust after each attack: {after}",
            f"- {r['version']}: time per attack (last repeat), ours: {spent['ours']}; official: "
            f"{spent['official'] or 'not recorded'}",
            f"- {r['version']}: seconds per repeat, ours: {_each(r, 'ours')}; official: "
            f"{_each(r, 'official')}",
            f"- {r['version']}: examples broken only by ours: {r['broken_only_by_ours']}, only "
            f"by the official: {r['broken_only_by_official']}",
        ]
    payload = json.dumps({"meta": meta, "results": results}, indent=2)
    lines += ["", "<details><summary>raw results</summary>", "", "```json", payload, "```", "",
              "</details>", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--n", type=int, default=200, help="test images (stratified subset)")
    parser.add_argument("--version", choices=["fast", "standard", "both"], default="both")
    parser.add_argument("--model", default=str(ROOT / "tests/assets/cifar_resnet10_sat_bn"))
    parser.add_argument("--eps", type=parse_eps, default=8 / 255, help="e.g. 8/255")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=None,
                        help="iterations of APGD/FAB on both sides (default: 100)")
    parser.add_argument("--queries", type=int, default=None,
                        help="Square queries on both sides (default: 5000)")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                        help="precision of our attacks' passes (the official code runs fp32); "
                             "what they broke is decided in fp32 either way")
    parser.add_argument("--repeats", type=int, default=1,
                        help="runs of each side (alternating); the median time is reported")
    parser.add_argument("--append", action="store_true",
                        help="append this run's markdown section to --out instead of replacing it")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's)")
    parser.add_argument("--out", default=None,
                        help="output file: .json for JSON, anything else markdown with the "
                             "JSON appended (default: benchmarks/results/"
                             "eval_throughput_<device>.md)")
    args = parser.parse_args(argv)

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but CUDA is not available")
    model = nofrost.load_model(args.model, device=device)
    model.eval()
    data = stratified_subset(load_dataset("cifar10-mini", "test"), args.n)
    x = (data.images.float() / 255).to(device)
    y = data.targets.to(device)

    import pyautoattack

    versions = ["fast", "standard"] if args.version == "both" else [args.version]
    results = []
    for version in versions:
        result = run_version(model, x, y, args.eps, version, args, device)
        results.append(result)
        print(f"{version}: robust ours {result['ours']['robust_accuracy']:.3f} / official "
              f"{result['official']['robust_accuracy']:.3f}, time ours "
              f"{result['ours']['seconds']:.1f} s / official {result['official']['seconds']:.1f} s "
              f"({result['speed_ratio']:.2f}x)", flush=True)

    if device.type == "cuda":
        machine = torch.cuda.get_device_name(device)
    else:
        machine = f"{cpu_name()}, {os.cpu_count()} CPU cores"
    meta = {
        "command": " ".join(getattr(sys, "orig_argv", [Path(sys.executable).name, *sys.argv])),
        "machine": machine,
        "model": os.path.relpath(args.model, ROOT),
        "n": args.n,
        "eps": args.eps,
        "torch": torch.__version__,
        "pyautoattack": pyautoattack.__version__,
        "threads": torch.get_num_threads(),
        "seed": args.seed,
        "steps": args.steps,
        "queries": args.queries,
        "repeats": args.repeats,
        "precision": args.precision,
    }
    out = Path(args.out or ROOT / "benchmarks/results" / f"eval_throughput_{args.device}.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".json":
        out.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    elif args.append and out.exists():
        out.write_text(out.read_text().rstrip("\n") + "\n\n" + markdown(results, meta))
    else:
        out.write_text(TITLE + "\n" + markdown(results, meta))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
