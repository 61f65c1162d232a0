"""The training loop.

It builds data, model and method from one :class:`~nofrost.config.Config`, runs epochs, and
keeps a run directory up to date after every epoch::

    config.yaml        the resolved config
    metrics.jsonl      one JSON object per epoch
    checkpoint.pt      full state for --resume (atomic write, pickle-free)
    model.safetensors  final weights, with model.json to rebuild the model

The loop never knows which method runs: the method turns a batch into a loss. A method may
ask for its minibatches to be *replayed* (Free AT, Shafahi et al. 2019) by exposing an int
attribute ``replays`` = m: each minibatch then gets m forward/backward/optimizer steps in a
row, the schedule counts all of them, and ``ceil(optim.epochs / m)`` epochs run, so the number
of optimizer steps stays about that of ``optim.epochs`` plain epochs. A method with state
(``state_dict()`` / ``load_state_dict()``) has it saved in the checkpoint for ``--resume``;
under DDP every rank's state and buffers are saved, and each rank gets its own back.

Randomness (attack starts, dropout, augmentation) is re-seeded at every epoch from
``(runtime.seed, epoch, rank)``, so ``--resume`` continues bit-exactly without saving RNG
states and each DDP rank draws its own stream. Under ``torchrun``, ``optim.batch_size`` is the
global batch: each of K processes trains on batch_size / K images per step and DDP averages
the gradients, which is the same update as one process with the whole batch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from timm.utils import adaptive_clip_grad
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from nofrost.attacks import default_step_size, pgd_attack
from nofrost.config import Config, save_config
from nofrost.console import eta_text, progress_enabled
from nofrost.data import (
    dataset_info,
    dataset_targets,
    load_dataset,
    make_loader,
    stratified_indices,
    stratified_split,
    stratified_subset,
    take,
)
from nofrost.data.loader import derive_seed
from nofrost.distributed import (
    DistContext,
    init_distributed,
    resolve_device,
    shutdown_distributed,
)
from nofrost.files import BEST_DIR, RUN_FILES, atomic_write_text
from nofrost.methods import StepContext, StepOutput, build_method
from nofrost.methods.base import make_training_attack
from nofrost.models import create_model, save_model
from nofrost.models.ghost_bn import convert_to_ghost_bn
from nofrost.models.norms import has_routed_layers, mixes_examples
from nofrost.train.checkpoint import (
    CHECKPOINT_FORMAT,
    atomic_torch_save,
    load_checkpoint,
)
from nofrost.train.compile import CompiledOrEager, should_compile
from nofrost.train.precision import attack_in_bf16, cpu_bf16_fallback_note, step_uses_bf16
from nofrost.train.optim import (
    build_optimizer,
    build_schedule,
    head_excluded_parameters,
)

# How often (in steps) the loop reads the running loss back from the device: often enough to
# stop soon after a NaN, rarely enough not to stall the GPU on every step.
_SYNC_EVERY = 25


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last finished epoch's checkpoint is kept."""


@dataclass
class TrainResult:
    out_dir: Path
    model: nn.Module
    history: list[dict[str, Any]]
    seconds: float  # training time of this invocation plus that of resumed epochs


def build_model_for(config: Config) -> nn.Module:
    """The model the config names, sized for its dataset (classes, channels, mean/std)."""
    info = dataset_info(config.data.name)
    kwargs: dict[str, Any] = {
        "in_chans": info.in_chans,
        "mean": info.mean,
        "std": info.std,
        "dropout": config.model.dropout,
        "drop_path": config.model.drop_path,
    }
    if config.model.norm is not None:
        kwargs["norm"] = config.model.norm
    if config.model.width is not None:
        kwargs["width"] = config.model.width
    return create_model(config.model.name, num_classes=info.num_classes, **kwargs)


@torch.no_grad()
def correct_counts(
    model: nn.Module,
    loader,
    autocast=contextlib.nullcontext,
    attack: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """``[correct, total]`` (float64, on the model's device) of the model on ``loader`` in eval
    mode: on the images as they are, or on ``attack(model, x, y)`` (robust accuracy)."""
    was_training = model.training
    model.eval()
    counts = torch.zeros(2, dtype=torch.float64, device=next(model.parameters()).device)
    for x, y in loader:
        if attack is not None:
            x = attack(model, x, y)
        with torch.no_grad(), autocast():
            counts[0] += (model(x).argmax(1) == y).sum()
        counts[1] += len(y)
    model.train(was_training)
    return counts


_SELECTION_STREAM = 0x5E1EC7  # derive_seed key of the selection attack's random starts


def selection_accuracy(model: nn.Module, select_set: Any, config: Config, epoch: int, device: torch.device) -> float:
    """PGD robust accuracy on ``select_set``, as ``PGDAT.py`` picks ``best_RA.pth``: PGD with
    ``eval.select_steps`` steps of the *training* attack's step size, from a random start."""
    attack_config = config.attack
    step_size = attack_config.step_size or default_step_size(attack_config.eps, attack_config.steps)
    generator = torch.Generator(device).manual_seed(derive_seed(config.runtime.seed, epoch, _SELECTION_STREAM))

    def attack(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return pgd_attack(m, x, y, attack_config.eps, steps=config.eval.select_steps, step_size=step_size,
                          generator=generator)

    loader = make_loader(select_set, config.eval.batch_size, shuffle=False, augment=False, device=device)
    robust, total = correct_counts(model, loader, attack=attack).tolist()
    return robust / max(total, 1)


def _training_and_selection_sets(config: Config, test_set: Any, views: tuple[str, ...] = ()) -> tuple[Any, Any]:
    """The training set (with the extra ``views`` the method asks for), and the images the best
    checkpoint is chosen on (None: ``select: last``).

    With ``eval.select_on: holdout`` those are ``eval.select_n`` class-balanced images taken
    out of the training images (after ``data.train_n``), loaded without augmentation; with
    ``eval`` they are taken from ``test_set``, the test split.
    """
    data, select = config.data, config.eval
    full = load_dataset(data.name, "train", data.root, augment=data.augment, image_size=data.image_size, views=views)
    targets = dataset_targets(full)
    indices = np.arange(len(targets))
    if data.train_n is not None:
        indices = stratified_indices(targets, data.train_n, seed=config.runtime.seed)
    if select.select != "best":
        return take(full, indices), None
    if select.select_on == "eval":
        warnings.warn(
            "eval.select_on=eval chooses the best checkpoint on test-split images, as the reference code "
            "did: the reported robustness is then selected on test data and optimistic; "
            "eval.select_on=holdout chooses on images held out of the training data instead",
            stacklevel=3,
        )
        return take(full, indices), stratified_subset(
            test_set, min(select.select_n, len(test_set)), seed=config.runtime.seed
        )
    if select.select_n >= len(indices):
        raise ValueError(
            f"eval.select_n={select.select_n} would hold out all {len(indices)} training images; "
            "use fewer, or eval.select_on=eval"
        )
    held, rest = stratified_split(targets[indices], select.select_n, seed=config.runtime.seed)
    plain = load_dataset(data.name, "train", data.root, augment=False, image_size=data.image_size)
    return take(full, indices[rest]), take(plain, indices[held])


def train(config: Config, out_dir: str | Path, *, resume: bool = False, quiet: bool = False) -> TrainResult:
    """Train the model ``config`` describes and write the run directory ``out_dir``.

    Under ``torchrun`` every process calls this: it joins the process group (see
    :mod:`nofrost.distributed`), trains its share of each global batch, and rank 0 alone logs
    and writes the run directory.
    """
    context = init_distributed(resolve_device(config.runtime.device))
    try:
        result = _train(config, Path(out_dir), context, resume=resume, quiet=quiet or not context.is_main)
    except BaseException:
        shutdown_distributed(context, wait=False)
        raise
    shutdown_distributed(context)
    return result


def _train(config: Config, out: Path, dist: DistContext, *, resume: bool, quiet: bool) -> TrainResult:
    checkpoint_path = out / "checkpoint.pt"
    if checkpoint_path.exists() and not resume:
        raise FileExistsError(
            f"{str(out)!r} already holds a run (checkpoint.pt); pass --resume to continue it, "
            "or choose another --out so its results are not overwritten"
        )
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {str(out)!r} is a file, not a folder; choose a new folder for the run")
    if out.is_dir() and any(out.iterdir()) and not any((out / f).exists() for f in RUN_FILES):
        raise FileExistsError(
            f"--out {str(out)!r} is a folder with other files in it, not a nofrost run; choose a new or "
            "empty folder, so that nothing in it is overwritten"
        )
    dist.barrier()  # every rank has looked for an old run before rank 0 writes a new one
    if dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
    device = dist.device
    batch_size = config.optim.batch_size  # the global batch
    if batch_size % dist.world_size:
        raise ValueError(
            f"optim.batch_size={batch_size} is the global batch and must divide evenly among "
            f"{dist.world_size} processes; use a multiple of {dist.world_size}"
        )
    rank_batch = batch_size // dist.world_size
    torch.manual_seed(config.runtime.seed)  # the same initial weights on every rank

    method = build_method(config.method, config.attack)
    # A method may resolve defaults it reports (the DeepAugment variant): config.yaml records them.
    if getattr(method, "config", None) is not None:
        config = dataclasses.replace(config, method=method.config)
    views = tuple(getattr(method, "views", ()))  # extra views of each batch the method needs
    if not quiet and getattr(method, "describe", None) and method.describe():
        print(f"{config.method.name}: {method.describe()}", file=sys.stderr)
    if not quiet and (note := cpu_bf16_fallback_note(config.runtime, dist.device)):
        print(note, file=sys.stderr)

    test_set = None  # loaded once, for per-epoch evaluation and for choosing the best checkpoint on it
    if config.data.eval_n > 0 or (config.eval.select == "best" and config.eval.select_on == "eval"):
        test_set = load_dataset(config.data.name, "test", config.data.root, image_size=config.data.image_size)
    train_set, select_set = _training_and_selection_sets(config, test_set, views)
    eval_set = None
    if config.data.eval_n > 0:
        eval_set = stratified_subset(test_set, min(config.data.eval_n, len(test_set)), seed=config.runtime.seed)
    if batch_size > len(train_set):
        raise ValueError(
            f"optim.batch_size={batch_size} is larger than the training set ({len(train_set)} images)"
        )

    model = build_model_for(config).to(device)
    if config.runtime.grad_checkpointing:
        model.set_grad_checkpointing(True)
    if config.runtime.sync_bn and dist.enabled:
        if device.type != "cuda":
            raise ValueError(
                "runtime.sync_bn synchronizes batch-norm statistics across GPUs, and PyTorch's "
                "SyncBatchNorm runs on CUDA only; on CPU drop runtime.sync_bn (BN statistics then "
                "stay per process, as in the reference code)"
            )
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if config.runtime.bn_group_size is not None:
        if not any(type(m) is nn.BatchNorm2d for m in model.modules()):
            raise ValueError(
                f"runtime.bn_group_size={config.runtime.bn_group_size} computes batch-norm statistics over "
                f"groups of examples, but {config.model.name} (norm {config.model.norm or 'default'}) has no "
                "plain BatchNorm2d layers to apply it to; drop runtime.bn_group_size"
            )
        convert_to_ghost_bn(model, config.runtime.bn_group_size)
    on_cuda = device.type == "cuda"

    def train_loader(epoch: int):
        return make_loader(
            train_set, rank_batch, shuffle=True, augment=config.data.augment, seed=config.runtime.seed, epoch=epoch,
            drop_last=True, num_workers=config.data.workers, device=device, rank=dist.rank, world_size=dist.world_size,
            views=views,
        )

    steps_per_epoch = len(train_loader(0))
    replays = method_replays(method)
    epochs = math.ceil(config.optim.epochs / replays)  # epochs actually run
    optimizer = build_optimizer(model, config.optim)
    # One schedule step per optimizer step: steps_per_epoch · replays per epoch; warm-up stays
    # warmup_epochs · steps_per_epoch optimizer steps.
    schedule = build_schedule(optimizer, dataclasses.replace(config.optim, epochs=epochs * replays), steps_per_epoch)
    training_step = TrainingStep.build(model, config, method, optimizer, schedule, dist)

    history: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None  # the best checkpoint so far (eval.select: best)
    start_epoch = 0
    if resume:
        if not checkpoint_path.exists():
            raise FileNotFoundError(f"--resume: no checkpoint.pt in {str(out)!r}; start a new run instead")
        state = load_checkpoint(checkpoint_path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["scheduler"])
        start_epoch = int(state["epoch"])
        if "method" in state and hasattr(method, "load_state_dict"):
            method.load_state_dict(state["method"])
        _load_rank_state(state, model, method, dist)
        best = state.get("best")
        history = _read_metrics(out / "metrics.jsonl", upto_epoch=start_epoch)
    if dist.is_main:
        save_config(config, out / "config.yaml")
        _write_metrics(out / "metrics.jsonl", history)

    show = progress_enabled(quiet)
    for epoch in range(start_epoch, epochs):
        # Random starts, dropout and augmentation draw from a stream fixed by (seed, epoch,
        # rank): ranks differ, and --resume continues exactly without saving RNG states.
        torch.manual_seed(derive_seed(config.runtime.seed, epoch, dist.rank))
        if on_cuda:
            torch.cuda.reset_peak_memory_stats(device)
        started = time.perf_counter()
        model.train()
        sums = torch.zeros(4, device=device)  # loss·n, clean correct, adversarial correct, n (per replay)
        seen_clean = seen_adv = False
        bar = tqdm(train_loader(epoch), total=steps_per_epoch, disable=not show, leave=False,
                   desc=f"epoch {epoch + 1}/{epochs}", unit="batch")
        for step, (x, y, *views_of_batch) in enumerate(bar):
            for _ in range(replays):
                result = training_step(x, y, *views_of_batch)
                with torch.no_grad():
                    sums[0] += result.loss.detach().float() * len(y)
                    sums[3] += len(y)
                    if result.logits_clean is not None:
                        sums[1] += (result.logits_clean.argmax(1) == y).sum()
                        seen_clean = True
                    if result.logits_adv is not None:
                        sums[2] += (result.logits_adv.argmax(1) == y).sum()
                        seen_adv = True
            if (step + 1) % _SYNC_EVERY == 0 or step + 1 == steps_per_epoch:
                # Every rank reads the same all-reduced loss, so all stop together on a NaN.
                totals = dist.all_reduce_sum(sums.clone())
                loss_so_far = (totals[0] / totals[3]).item()
                if not math.isfinite(loss_so_far):
                    raise TrainingDiverged(
                        f"the training loss became {loss_so_far} in epoch {epoch + 1} (step {step + 1}). "
                        f"The last finished epoch is kept in {str(checkpoint_path)!r}. Try a lower "
                        "optim.lr, optim.warmup_epochs > 0, or optim.agc_clip (e.g. 0.01)."
                    )
                bar.set_postfix(loss=f"{loss_so_far:.3f}")
        seconds = time.perf_counter() - started
        n, loss_sum, clean_correct, adv_correct = totals[3].item(), totals[0].item(), totals[1].item(), totals[2].item()
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "lr": optimizer.param_groups[0]["lr"],
            "train_loss": loss_sum / n,
            "train_clean_acc": clean_correct / n if seen_clean else None,
            "train_adv_acc": adv_correct / n if seen_adv else None,
            "seconds": seconds,
            "images_per_s": n / seconds,
        }
        if on_cuda:
            peak = torch.cuda.max_memory_allocated(device)
            record["peak_memory_gib"] = peak / 2**30
            record["peak_memory_mib_per_image"] = peak / 2**20 / rank_batch
        if eval_set is not None:
            eval_loader = make_loader(eval_set, config.eval.batch_size, shuffle=False, augment=False, device=device,
                                      rank=dist.rank, world_size=dist.world_size)
            correct, total = dist.all_reduce_sum(correct_counts(model, eval_loader, training_step.ctx.autocast)).tolist()
            record["eval_clean_acc"] = correct / max(total, 1)
        if select_set is not None and config.eval.selects_at(epoch, epochs) and dist.is_main:
            # Rank 0 alone, as PGDAT.py; the others wait at the next collective.
            record["select_robust_acc"] = selection_accuracy(model, select_set, config, epoch, device)
            if best is None or record["select_robust_acc"] >= best["select_robust_acc"]:  # later ties win, as there
                best = {"epoch": epoch + 1, "select_robust_acc": record["select_robust_acc"],
                        "select_on": config.eval.select_on, "select_n": len(select_set)}
                save_model(model, out / BEST_DIR)
                atomic_write_text(out / BEST_DIR / "best.json", json.dumps(best, indent=2) + "\n")
        history.append(record)
        rank_states = dist.all_gather_object(_rank_state(model, method)) if dist.enabled else None
        if dist.is_main:
            _save_checkpoint(checkpoint_path, model, optimizer, schedule, epoch + 1, config, method, rank_states, best)
            _write_metrics(out / "metrics.jsonl", history)
        if not quiet:
            done_here = history[-(epoch + 1 - start_epoch):]  # the epochs this invocation ran
            left = statistics.fmean(r["seconds"] for r in done_here) * (epochs - epoch - 1)
            print(_format_record(record, epochs) + (f" | about {eta_text(left)} left" if left else ""), file=sys.stderr)

    if dist.is_main:
        save_model(model, out)
    model.eval()
    return TrainResult(out_dir=out, model=model, history=history, seconds=sum(r["seconds"] for r in history))


@dataclass
class TrainingStep:
    """One optimizer step of the configured method on one batch: what the loop runs per batch
    (per replay) and what ``benchmarks/train_throughput.py`` times.

    ``step_model`` is the module the loss forwards run through; ``ctx.attack_model`` the one
    attacks run on when that differs (see :meth:`build`).
    """

    method: Any
    step_model: nn.Module
    ctx: StepContext
    optimizer: torch.optim.Optimizer
    schedule: Any
    memory_format: torch.memory_format = torch.contiguous_format
    agc_params: list[nn.Parameter] | None = None
    agc_clip: float | None = None

    @classmethod
    def build(cls, model: nn.Module, config: Config, method: Any, optimizer, schedule,
              dist: DistContext | None = None) -> "TrainingStep":
        """The step for ``model`` (already on its device), which it converts to channels_last
        when ``runtime.channels_last`` is set.

        Under DDP the loss goes through the DistributedDataParallel wrapper (gradients are
        averaged across ranks in backward) while attacks use the bare network: their
        input-only backward passes must not touch DDP's gradient buckets. Each is compiled when
        ``runtime.compile`` says so. bf16 autocast covers the loss forwards on CUDA; clean and
        adversarial examples share one pass when no layer mixes examples.
        """
        memory_format = torch.channels_last if config.runtime.channels_last else torch.contiguous_format
        model.to(memory_format=memory_format)  # in place: the optimizer's parameters stay the same
        dist = dist if dist is not None else DistContext(device=next(model.parameters()).device)
        device = dist.device
        compiled = should_compile(config.runtime.compile, device)

        def maybe_compile(module: nn.Module) -> nn.Module:
            return CompiledOrEager(module, config.runtime.compile_mode) if compiled else module

        if dist.enabled:
            ddp = DistributedDataParallel(
                model,
                device_ids=[device] if device.type == "cuda" else None,
                # A routed norm (MBN) leaves one of its parameter sets unused in each forward.
                find_unused_parameters=has_routed_layers(model),
                broadcast_buffers=config.runtime.broadcast_buffers,
                gradient_as_bucket_view=True,  # no copy between .grad and the all-reduce buckets
            )
            step_model, attack_model = maybe_compile(ddp), maybe_compile(model)
        else:
            step_model = attack_model = maybe_compile(model)
        attack_config = config.attack
        if attack_in_bf16(config.runtime, device):
            attack_config = dataclasses.replace(attack_config, precision="bf16")
        ctx = StepContext(
            attack=make_training_attack(attack_config),
            autocast=((lambda: torch.autocast(device.type, dtype=torch.bfloat16))
                      if step_uses_bf16(config.runtime, device) else contextlib.nullcontext),
            label_smoothing=config.optim.label_smoothing,
            attack_model=None if attack_model is step_model else attack_model,
            fuse_clean_adv=config.runtime.fused_forward and not mixes_examples(model),
        )
        return cls(
            method=method, step_model=step_model, ctx=ctx, optimizer=optimizer, schedule=schedule,
            memory_format=memory_format,
            agc_params=head_excluded_parameters(model) if config.optim.agc_clip else None,
            agc_clip=config.optim.agc_clip,
        )

    def __call__(self, x: torch.Tensor, y: torch.Tensor, views: dict[str, torch.Tensor] | None = None) -> StepOutput:
        """One step on batch ``(x, y)``; ``views``: the batch's extra views (``StepContext.views``)."""
        x = x.contiguous(memory_format=self.memory_format)
        ctx = self.ctx
        if views:
            ctx = dataclasses.replace(ctx, views={k: v.contiguous(memory_format=self.memory_format) for k, v in views.items()})
        try:
            result = self._loss_and_gradients(x, y, ctx)
        except Exception as error:
            compiled = [m for m in (self.step_model, self.ctx.attack_model)
                        if isinstance(m, CompiledOrEager) and m.failed is None]
            if not compiled:
                raise
            # A backward graph compiles lazily, in backward(), where no module call can catch
            # it: redo the step eagerly. If eager fails too, the error is the user's: raise it.
            for module in compiled:
                module.eager_only = True
            result = self._loss_and_gradients(x, y, ctx)
            for module in compiled:
                module.fall_back(error)
        if self.agc_params is not None:
            adaptive_clip_grad(self.agc_params, clip_factor=self.agc_clip)
        self.optimizer.step()
        self.schedule.step()
        return result

    def _loss_and_gradients(self, x: torch.Tensor, y: torch.Tensor, ctx: StepContext) -> StepOutput:
        result = self.method(self.step_model, x, y, ctx)
        self.optimizer.zero_grad(set_to_none=True)
        result.loss.backward()
        return result


def method_replays(method: Any) -> int:
    """How many optimizer steps the method wants per minibatch (its ``replays``, default 1)."""
    replays = getattr(method, "replays", 1)
    if isinstance(replays, bool) or not isinstance(replays, int) or replays < 1:
        raise ValueError(f"a training method's 'replays' must be an int >= 1, got {replays!r}")
    return replays


def _rank_state(model: nn.Module, method: Any) -> dict[str, Any]:
    """What differs between ranks: the buffers (BN running statistics, kept per process as in
    the reference code) and a method's own state (Free AT's perturbation), on the CPU."""
    state: dict[str, Any] = {"buffers": {k: v.detach().cpu() for k, v in model.named_buffers()}}
    if hasattr(method, "state_dict"):
        state["method"] = method.state_dict()
    return state


def _load_rank_state(state: dict[str, Any], model: nn.Module, method: Any, dist: DistContext) -> None:
    """Give each rank back its own buffers and method state, so that --resume stays exact."""
    rank_states = state.get("rank_states")
    if not dist.enabled or rank_states is None:
        return
    if len(rank_states) != dist.world_size:
        if dist.is_main:
            warnings.warn(
                f"the checkpoint was written by {len(rank_states)} processes and this run has "
                f"{dist.world_size}: every rank starts from rank 0's BN statistics and method state",
                stacklevel=2,
            )
        return
    own = rank_states[dist.rank]
    buffers = dict(model.named_buffers())
    with torch.no_grad():
        for name, value in own["buffers"].items():
            buffers[name].copy_(value)
    if "method" in own and hasattr(method, "load_state_dict"):
        method.load_state_dict(own["method"])


def _save_checkpoint(path: Path, model, optimizer, schedule, epoch: int, config: Config, method=None,
                     rank_states: list[Any] | None = None, best: dict[str, Any] | None = None) -> None:
    state = {
        "format": CHECKPOINT_FORMAT,
        "model_spec": model.nofrost_spec,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": schedule.state_dict(),
        "epoch": epoch,
        "config": config.to_dict(),
    }
    if hasattr(method, "state_dict"):
        state["method"] = method.state_dict()
    if rank_states is not None:
        state["rank_states"] = rank_states
    if best is not None:
        state["best"] = best
    atomic_torch_save(state, path)


def _read_metrics(path: Path, upto_epoch: int) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in records if r.get("epoch", 0) <= upto_epoch]


def _write_metrics(path: Path, history: list[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in history))


def _format_record(record: dict[str, Any], epochs: int) -> str:
    parts = [f"epoch {record['epoch']}/{epochs}", f"loss {record['train_loss']:.3f}"]
    for key, label in (("train_clean_acc", "train clean"), ("train_adv_acc", "train adv"), ("eval_clean_acc", "eval clean")):
        if record.get(key) is not None:
            parts.append(f"{label} {100 * record[key]:.1f}%")
    parts.append(f"{record['images_per_s']:.0f} img/s")
    return " | ".join(parts)
