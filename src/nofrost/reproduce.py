"""``nofrost reproduce NAME``: a table or figure of the NoFrost paper, by name, at a chosen scale.

Each target is data (:data:`TARGETS`): the runs it trains (its *arms*: a recipe, a radius and
seeds), the attacks their evaluation runs, and what is measured after training (ε curves, a γ
sweep, model properties, BN statistics). A :class:`Scale` turns an arm into a preset and
overrides:

- ``cpu``: the ``cifar10-<recipe>`` preset shrunk to ``cifar10-mini`` and the quickstart's
  CPU budget (a ResNet-10, 5 epochs' worth of optimizer steps, PGD-3 in training, 500 test
  images): minutes per run on a 2-core machine;
- ``cifar10``: the single-GPU CIFAR-10 recipe, ``cifar10-<recipe>``;
- ``imagenet``: the paper's recipe, ``imagenet-<recipe>-<r26|r50>[-eps2|-eps4]``.

:func:`plan` gives the target as a list of ``nofrost`` command lines (:class:`Step`): training
runs, then evaluations and analyses on them. ``nofrost reproduce`` runs them in turn (skipping
steps whose output exists, so re-running continues) and ends with ``DIR/report.html``, or
prints them (``--print-commands``; training as ``torchrun``) for a cluster. ``DIR/
reproduce.json`` lists what the report reads, so ``nofrost report DIR`` works at any time.
"""

from __future__ import annotations

import json
import math
import shlex
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from nofrost.config import load_config
from nofrost.files import atomic_write_text
from nofrost.report.sources import REPRODUCE_MANIFEST

__all__ = ["SCALES", "TARGETS", "Arm", "Plan", "Scale", "Step", "Target", "plan", "reproduce", "write_manifest"]

WHITE_BOX = "pgd:steps=20,apgd-ce:steps=20,autoattack:version=fast:steps=20,pgd-t:steps=20"  # Figure 2's panels


@dataclass(frozen=True)
class Arm:
    """One row of a table: a training recipe (the preset stem shared by the scales, e.g.
    ``nofrost``, ``sat``, ``sat-in``), its radius, and its seeds (several: a Table 4 sweep)."""

    name: str
    recipe: str
    eps: str = "8/255"
    seeds: tuple[int, ...] = (0,)


@dataclass(frozen=True)
class Target:
    name: str
    title: str
    depth: str = "r26"  # the ImageNet network: ResNet-26 or ResNet-50 (and their NF twins)
    arms: tuple[Arm, ...] = ()
    attacks: str = "paper"  # evaluated after training, at each arm's radius
    eps_curve: str = ""  # Figure 7: the radii of an ε curve per arm
    eps_curve_attacks: str = "pgd-t:steps=20"
    gamma_sweep: tuple[str, ...] = ()  # Figures 2 and 5: interpolation modes of the MBNAT arm
    properties: tuple[str, ...] = ()  # Table 5 / Figure 6: arms analysed for M(x), T(x), D(x)
    bn_stats: tuple[str, ...] = ()  # Figure 1: arms whose BN statistics are compared
    shift: bool = False  # Figures 3-4: every arm is also evaluated under distribution shift


_TABLE_1_ARMS = (Arm("st", "st"), Arm("sat", "sat"), Arm("trades", "trades"), Arm("fat", "fat"),
                 Arm("trades-fat", "trades-fat"), Arm("nofrost", "nofrost"))
# Figures 3-4 (Sec. 4.4): NoFrost* against the stand-alone methods and their naive combination on BN.
_SHIFT_ARMS = (Arm("st", "st"), Arm("sat", "sat"), Arm("deepaugment", "deepaugment"), Arm("tda", "tda"),
               Arm("combine", "combine"), Arm("nofrost-star", "nofrost-star"))

TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("table1", "Table 1: adversarial robustness of ResNet-26 at ε = 8/255", "r26", _TABLE_1_ARMS),
    Target("table2", "Table 2: adversarial robustness of ResNet-50 at ε = 8/255", "r50", _TABLE_1_ARMS),
    Target("table3", "Table 3: SAT with BN or IN against NoFrost (ResNet-26)", "r26",
           (Arm("sat-bn", "sat"), Arm("sat-in", "sat-in"), Arm("nofrost", "nofrost")), attacks="pgd:steps=20"),
    Target("table4", "Table 4: NoFrost over three seeds (ResNet-26), mean ± std", "r26",
           (Arm("nofrost", "nofrost", seeds=(0, 1, 2)),),
           attacks="pgd:steps=20,apgd-ce:steps=20,apgd-dlr:steps=20,autoattack:version=fast:steps=20"),
    Target("table5", "Table 5: decision margin, boundary thickness and smoothness (ResNet-26)", "r26",
           (Arm("sat", "sat"), Arm("mbnat", "mbnat"), Arm("nofrost", "nofrost")), attacks="pgd:steps=20",
           properties=("sat", "mbnat", "nofrost")),
    Target("table6", "Table 6: standard training of (NF-)ResNet-50 is not robust", "r50",
           (Arm("st", "st"), Arm("st-nf", "st-nf"), Arm("nofrost", "nofrost")),
           attacks="pgd:steps=20,apgd-ce:steps=20"),
    Target("table7", "Table 7: ResNet-50 at ε = 2/255 and 4/255 against Fast AT and Free AT", "r50",
           tuple(Arm(f"{recipe}-eps{k}", recipe, f"{k}/255") for k in (2, 4) for recipe in ("fast-at", "free-at", "nofrost")),
           attacks="pgd:steps=10:step_size=1/255,pgd:steps=50:step_size=1/255"),
    Target("figure1", "Figure 1: BN statistics of clean and adversarial training (ResNet-26, layer 15)", "r26",
           (Arm("st", "st"), Arm("pgdat", "pgdat")), attacks="pgd:steps=20", bn_stats=("st", "pgdat")),
    Target("figure2", "Figure 2 (a): MBNAT's γ trade-off against NoFrost (ResNet-26)", "r26",
           (Arm("mbnat", "mbnat"), Arm("nofrost", "nofrost")), attacks=WHITE_BOX, gamma_sweep=("logits",)),
    Target("figure2-r50", "Figure 2 (b): MBNAT's γ trade-off against NoFrost (ResNet-50)", "r50",
           (Arm("mbnat", "mbnat"), Arm("nofrost", "nofrost")), attacks=WHITE_BOX, gamma_sweep=("logits",)),
    Target("figure3", "Figure 3: robustness to attacks and distribution shift (ResNet-26)", "r26", _SHIFT_ARMS,
           attacks="pgd:steps=20,square:queries=400", shift=True),
    Target("figure4", "Figure 4: robustness to attacks and distribution shift (ResNet-50)", "r50", _SHIFT_ARMS,
           attacks="pgd:steps=20,square:queries=400", shift=True),
    Target("figure5", "Figure 5: MBNAT's trade-off under three interpolation strategies (ResNet-26)", "r26",
           (Arm("mbnat", "mbnat"), Arm("nofrost", "nofrost")), attacks=WHITE_BOX,
           gamma_sweep=("logits", "all", "random")),
    Target("figure6", "Figure 6: histograms of margin, thickness and smoothness (ResNet-26)", "r26",
           (Arm("sat", "sat"), Arm("mbnat", "mbnat"), Arm("nofrost", "nofrost")), attacks="pgd:steps=20",
           properties=("sat", "mbnat", "nofrost")),
    Target("figure7", "Figure 7: robustness as ε grows from 8/255 to 16/255 (ResNet-26, targeted PGD)", "r26",
           _TABLE_1_ARMS, attacks="pgd-t:steps=20", eps_curve="8/255,10/255,12/255,14/255,16/255"),
)}


@dataclass(frozen=True)
class Scale:
    name: str
    describe: str
    data: str  # the dataset name evaluations and analyses use
    needs_root: bool
    eval_n: int  # examples of the evaluations after training (ε curves, γ sweeps)
    nproc: int | None  # processes per node of printed training commands (None: plain nofrost)

    def preset(self, target: Target, arm: Arm) -> str:
        if self.name == "imagenet":
            return f"imagenet-{arm.recipe}-{target.depth}" + ("" if arm.eps == "8/255" else f"-eps{arm.eps.split('/')[0]}")
        return f"cifar10-{arm.recipe}"

    def overrides(self, preset: str, arm: Arm, data_root: str | None) -> list[str]:
        sets = [] if self.name == "imagenet" or arm.eps == "8/255" else [f"attack.eps={arm.eps}"]
        if self.name != "cpu":
            return [*sets, f"data.root={data_root}"]
        # The quickstart's CPU budget and its bf16 steps on CPUs that have bf16; a replaying method
        # (Free AT) gets the same optimizer steps.
        replays = load_config(preset).method.replays or 1
        return [*sets, "data.name=cifar10-mini", "data.root=null", "data.eval_n=0", "model.name=cifar_resnet10",
                f"optim.epochs={math.ceil(CPU_EPOCHS / replays)}", "optim.batch_size=128", "attack.steps=3",
                "runtime.device=auto", "runtime.cpu_bf16=true", "eval.n=500"]

    def data_arg(self, data_root: str | None) -> str:
        return self.data if not self.needs_root else f"{self.data}:{data_root}"

    def shift_data(self, data_root: str | None) -> list[str]:
        """The distribution-shift sets Figures 3-4 use at this scale when none are named: the
        corruptions generated from the test split (CIFAR-10-C's or ImageNet-C's constants)."""
        return [f"{self.data.replace('-mini', '')}-c-gen" + (f":{data_root}" if self.needs_root else "")]


CPU_EPOCHS = 5
SCALES: dict[str, Scale] = {s.name: s for s in (
    Scale("cpu", "cifar10-mini (shipped), a ResNet-10, 5 epochs: minutes per run on a 2-core CPU", "cifar10-mini", False, 500, None),
    Scale("cifar10", "full CIFAR-10, the single-GPU recipe (ResNet-18, 100 epochs)", "cifar10", True, 1000, 1),
    Scale("imagenet", "ImageNet, the paper's recipe (ResNet-26/50, 90 epochs, 8 GPUs)", "imagenet", True, 1000, 8),
)}


@dataclass
class Step:
    """One ``nofrost`` command of a plan; ``output`` exists once it has run."""

    what: str
    argv: list[str]
    output: Path
    train: bool = False

    def command(self, nproc: int | None) -> str:
        """The command line; training as ``torchrun`` with ``nproc`` processes per node (None:
        a plain ``nofrost`` command)."""
        if self.train and nproc is not None:
            return shlex.join(["torchrun", f"--nproc_per_node={nproc}", "-m", "nofrost", *self.argv])
        return shlex.join(["nofrost", *self.argv])


@dataclass
class Plan:
    target: Target
    scale: Scale
    out: Path
    steps: list[Step] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)  # what the report reads, relative to out

    def manifest(self) -> dict:
        notes = [f"Reproduces the NoFrost paper's {self.target.title} at scale `{self.scale.name}`: "
                 f"{self.scale.describe}."]
        return {"target": self.target.name, "scale": self.scale.name, "title": self.target.title,
                "notes": notes, "inputs": self.inputs}


def target(name: str) -> Target:
    try:
        found = TARGETS[name]
    except KeyError:
        raise ValueError(f"unknown table or figure {name!r}; available: {', '.join(TARGETS)}") from None
    return found


def plan(name: str, scale: str, out: str | Path, *, data_root: str | None = None,
         overrides: Sequence[str] = (), shift_data: Sequence[str] = ()) -> Plan:
    """The steps of target ``name`` at ``scale`` into ``out``, every training config validated.

    ``shift_data``: the distribution-shift sets of Figures 3-4 as ``NAME[:ROOT]`` (e.g.
    ``imagenet-c:/data/imagenet-c``, ``imagenet-r:/data/imagenet-r``); default: the scale's
    generated corruptions (:meth:`Scale.shift_data`)."""
    chosen = target(name)
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; available: {', '.join(SCALES)}")
    size = SCALES[scale]
    if size.needs_root and not data_root:
        raise ValueError(f"--scale {scale} trains on {size.data}: give --data-root (the dataset folder)")
    out = Path(out)
    result = Plan(chosen, size, out)
    runs: dict[str, Path] = {}
    for arm in chosen.arms:
        preset = size.preset(chosen, arm)
        sets = [*size.overrides(preset, arm, data_root), f"eval.attacks=[{chosen.attacks}]", *overrides]
        load_config(preset, overrides=[*sets, "runtime.seed=0"])  # a bad preset or value fails now
        set_args = [a for s in sets for a in ("--set", s)]
        if len(arm.seeds) > 1:
            folder = out / arm.name
            seeds = ",".join(map(str, arm.seeds))
            result.steps.append(Step(f"sweep {arm.name} over seeds {seeds}",
                                     ["sweep", "--preset", preset, *set_args, "--seeds", seeds, "--out", str(folder)],
                                     folder / "sweep.json"))
            runs[arm.name] = folder / "base" / f"seed{arm.seeds[0]}"
        else:
            folder = runs[arm.name] = out / arm.name
            result.steps.append(Step(f"train {arm.name} ({preset})",
                                     ["train", "--preset", preset, *set_args, "--out", str(folder), "--resume", "auto"],
                                     folder / "eval.json", train=True))
        result.inputs.append(arm.name)
    data = size.data_arg(data_root)
    if chosen.eps_curve:
        for arm in chosen.arms:
            result.steps.append(Step(f"ε curve of {arm.name}", [
                "evaluate", str(runs[arm.name]), "--data", data, "--attacks", chosen.eps_curve_attacks,
                "--eps", chosen.eps_curve, "--n", str(size.eval_n)], runs[arm.name] / "eps_curve.json"))
    if chosen.shift:
        shifted = list(shift_data) or size.shift_data(data_root)
        data_args = [a for d in shifted for a in ("--data", d)]
        last = shifted[-1].partition(":")[0]
        for arm in chosen.arms:
            result.steps.append(Step(f"distribution shift of {arm.name}", ["evaluate", str(runs[arm.name]), *data_args],
                                     runs[arm.name] / f"eval-{last}.json"))
    mbnat = next((a for a in chosen.arms if a.recipe == "mbnat"), None)
    for mode in chosen.gamma_sweep:
        path = out / f"gamma_{mode}.json"
        result.steps.append(Step(f"γ sweep of {mbnat.name} ({mode})", [
            "gamma-sweep", str(runs[mbnat.name]), "--data", data, "--attacks", chosen.attacks, "--mode", mode,
            "--nofrost", *(str(runs[a.name]) for a in chosen.arms if a is not mbnat), "--n", str(size.eval_n),
            "--json", str(path), "--plot", str(path.with_suffix(".png"))], path))
        result.inputs.append(path.name)
    first_classes = ["--classes", "0-9"] if size.name == "imagenet" else []  # the paper: first 10 ImageNet classes
    if chosen.properties:
        folder = out / "properties"
        result.steps.append(Step("model properties", [
            "analyze", *(str(runs[a]) for a in chosen.properties), "--data", data, "--n", "500", *first_classes,
            "--metrics", "margin,thickness,smoothness", "--out", str(folder)], folder / "analysis.md"))
        result.inputs.append(folder.name)
    if chosen.bn_stats:
        folder = out / "bn-stats"
        result.steps.append(Step("BN statistics", [
            "analyze", *(str(runs[a]) for a in chosen.bn_stats), "--data", data, "--n", "500", *first_classes,
            "--bn-stats", "--layer", "15", "--out", str(folder)], folder / "analysis.md"))
        result.inputs.append(folder.name)
    return result


def write_manifest(planned: Plan) -> Path:
    """``DIR/reproduce.json``: the title and what the report reads, so that ``nofrost report
    DIR`` works on a partial result (and after commands printed for a cluster have run)."""
    planned.out.mkdir(parents=True, exist_ok=True)
    path = planned.out / REPRODUCE_MANIFEST
    atomic_write_text(path, json.dumps(planned.manifest(), indent=2) + "\n")
    return path


def reproduce(planned: Plan, *, quiet: bool = False) -> list[Path]:
    """Run every step whose output is missing, in order, after writing the manifest; write the
    report last. Returns the report's files."""
    from nofrost.cli import main
    from nofrost.report import write_report
    from nofrost.console import eta_text

    write_manifest(planned)
    spent: list[float] = []
    todo = [not step.output.exists() for step in planned.steps]
    for index, (step, needed) in enumerate(zip(planned.steps, todo), start=1):
        if not quiet:
            print(f"== [{index}/{len(planned.steps)}] {step.what}: {'running' if needed else 'done, skipped'}", flush=True)
        if not needed:
            continue
        started = time.perf_counter()
        code = main([*step.argv, *(["--quiet"] if quiet else [])])
        if code != 0:
            raise RuntimeError(f"step {index} ({step.what}) failed with exit code {code}: nofrost {shlex.join(step.argv)}")
        spent.append(time.perf_counter() - started)
        left = sum(todo[index:])
        if not quiet and left:
            print(f"   {spent[-1]:.0f} s; {left} step(s) to go, about {eta_text(statistics.fmean(spent) * left)} left",
                  flush=True)
    return write_report([planned.out], planned.out / "report.html")
