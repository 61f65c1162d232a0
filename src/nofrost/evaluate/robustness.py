"""One entry point for robustness evaluation: :func:`evaluate`.

Each attack runs on the examples the model classifies correctly (an example it already gets
wrong cannot count as robust), so every attack's accuracy is at most the clean accuracy. The
per-example worst case counts an example as robust only if every attack failed on it. The
result follows the JSON contract in DESIGN.md and carries the self-audit.
"""

from __future__ import annotations

import hashlib
import time
from functools import partial
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from nofrost import attacks as attack_registry
from nofrost.attacks._common import check_eps, check_norm
from nofrost.attacks._fast import fast_eval_copy
from nofrost.attacks._registry import RESERVED, attack_options
from nofrost.data import class_subset, dataset_class_subset, dataset_targets, make_loader, stratified_subset
from nofrost.data.loader import derive_seed
from nofrost.distributed import DistContext
from nofrost.evaluate.audit import run_audit
from nofrost.evaluate.class_subset import SubsetLogits
from nofrost.evaluate.metrics import MetricBatch, metric_info, parse_metric_specs
from nofrost.evaluate.result import AttackResult, EvaluationResult, PerExample
from nofrost.evaluate.specs import AttackSpec, parse_spec
from nofrost.evaluate.state import EvaluationState, model_fingerprint
from nofrost.evaluate.suites import expand_suites, list_suites

def parse_attack_specs(
    attacks: str | Sequence[str | AttackSpec], norm: str = "linf"
) -> list[AttackSpec]:
    """Parse ``"clean,paper,pgd:steps=50"`` (or a list of such items) into attack specs.

    Suite names (``paper``, ``strong``; see :mod:`nofrost.evaluate.suites`) expand into their
    attacks; ``clean`` is always measured and needs no spec. Every attack must take the
    threat model ``norm``.
    """
    check_norm(norm)
    known = attack_registry.list_attacks()
    specs: list[AttackSpec] = []
    for item in [attacks] if isinstance(attacks, str) else attacks:
        for text in [item] if isinstance(item, AttackSpec) else expand_suites(item):
            spec = parse_spec(text)
            if spec.name == "clean":
                continue
            if spec.name not in known:
                raise ValueError(
                    f"unknown attack {spec.name!r}; available: clean, {', '.join(known)} "
                    f"(suites: {', '.join(list_suites())})"
                )
            options = attack_options(spec.name)
            unknown = sorted(set(spec.kwargs) - set(options))
            if unknown:
                reserved = unknown[0] in RESERVED
                raise ValueError(
                    f"attack {spec.name!r} has no option {unknown[0]!r} (in {spec.label!r}); "
                    + (f"{unknown[0]} is set for every attack of the evaluation"
                       + (" (--norm)" if unknown[0] == "norm" else "") if reserved
                       else f"its options: {', '.join(options)}")
                )
            norms = attack_registry.attack_info(spec.name).norms
            if norm not in norms:
                supporting = [name for name in known if norm in attack_registry.attack_info(name).norms]
                raise ValueError(
                    f"attack {spec.name!r} is defined for the {', '.join(norms)} threat model only, "
                    f"not {norm} (suite members included: the paper suite is ℓ∞, the paper's threat "
                    f"model); attacks for {norm}: {', '.join(supporting)}"
                )
            specs.append(spec)
    return specs


def evaluate(
    model: nn.Module,
    dataset: Dataset,
    *,
    attacks: str | Sequence[str | AttackSpec] = "strong",
    eps: float = 8 / 255,
    norm: str = "linf",
    n: int | None = None,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    seed: int = 0,
    precision: str = "fp32",
    metrics: str | Sequence[str | AttackSpec] | None = None,
    classes: Sequence[int] | None = None,
    state_path: str | Path | None = None,
    resume: bool = False,
    distributed: DistContext | None = None,
    progress: bool = False,
    model_name: str = "",
    dataset_name: str = "",
    split: str = "",
    audit: bool = True,
) -> EvaluationResult:
    """Clean and adversarial accuracy of ``model`` on (a stratified ``n`` of) ``dataset``.

    ``norm`` is the threat model (``"linf"`` or ``"l2"``) every attack runs in, ``eps`` its
    radius. ``metrics`` names per-example metrics to measure as well (``"margin,thickness,
    smoothness"``, options as for attacks; see :mod:`nofrost.evaluate.metrics`); ``classes``
    keeps only the examples of those classes before ``n`` is drawn (the NoFrost paper's Table
    5: the first 10 classes). Returns an :class:`EvaluationResult` (its ``to_json()`` is the
    evaluation JSON of DESIGN.md): accuracies as fractions, the per-example worst case over all
    attacks, the metrics' means, the threat model, the audit and the per-example values.

    ``state_path``: record the per-example progress there after each batch's attacks and
    metrics (:mod:`nofrost.evaluate.state`); with ``resume=True``, continue the evaluation
    recorded there (refused if it was another one). The caller removes the file when done.

    ``distributed``: the process group of a ``torchrun`` launch (:func:`init_distributed`);
    each process then attacks every K-th batch and all gather the per-example values, so every
    process returns the whole result, equal to one process's (randomness is seeded per batch).
    Give each process its own ``state_path``.

    A dataset that covers only some of the model's classes (its ``class_subset``: ImageNet-R,
    ImageNet-A) is scored on those logits only (:mod:`nofrost.evaluate.class_subset`).
    ``audit=False`` skips the self-audit (the corruption benchmarks, which run no attack,
    evaluate many datasets in a row).
    """
    started = time.perf_counter()
    specs = parse_attack_specs(attacks, norm)
    metric_specs = parse_metric_specs(metrics)
    eps = check_eps(eps, norm=norm, dim=_image_size(dataset))
    covered = dataset_class_subset(dataset)
    if classes is not None:
        dataset = class_subset(dataset, classes)
    if n is not None and n < len(dataset):
        dataset = stratified_subset(dataset, n, seed=seed)
    device = torch.device(device)
    model = model.to(device)
    was_training = model.training
    model.eval()
    if covered is not None:  # the argmax, the attacks and the audit see only the covered classes
        model = SubsetLogits(model, covered).to(device)
    loader = make_loader(dataset, batch_size, shuffle=False, augment=False, device=device)
    rank, world = (distributed.rank, distributed.world_size) if distributed is not None else (0, 1)
    state = None
    if state_path is not None:
        fingerprint = {
            "model": model_fingerprint(model), "dataset": dataset_name, "split": split, "examples": len(dataset),
            "labels": _labels_digest(dataset),
            "classes": None if classes is None else sorted(int(c) for c in classes), "seed": seed, "eps": eps,
            "norm": norm, "batch_size": batch_size, "precision": precision,
            "attacks": [f"{s.label} {sorted(s.resolved_kwargs().items())}" for s in specs],
            "metrics": [s.label for s in metric_specs], "process": f"{rank} of {world}",
        }  # fmt: skip
        state = EvaluationState(state_path, fingerprint, resume=resume)

    def recorded(batch_index: int, unit: str, compute: Callable[[], Tensor]) -> Tensor:
        """``compute()``, or its value from an earlier, interrupted run of this evaluation."""
        if state is None:
            return compute().cpu()
        done = state.get(batch_index, unit)
        return done if done is not None else state.put(batch_index, unit, compute())

    units: dict[int, dict[str, Tensor]] = {}  # per batch: "clean", "robust/<label>", "metric/<label>"
    audit_batch: tuple[Tensor, Tensor] | None = None
    attack_model, copied = model, False  # a faster copy for the attacks (attacks/_fast.py)
    bar = tqdm(loader, disable=not progress, desc="evaluating", unit="batch")
    for batch_index, (x, y) in enumerate(bar):
        if covered is not None:
            y = model.positions(y)
        if audit_batch is None:
            audit_batch = (x, y)  # every rank audits the first batch, so every rank's result is whole
        if batch_index % world != rank:
            continue  # another process's batch (torchrun): seeded by its index, the same there
        with torch.no_grad():
            logits = model(x)
        correct = logits.argmax(1) == y
        if not copied and (specs or metric_specs):  # nothing to attack, no copy to make
            attack_model, copied = fast_eval_copy(model, x[:8], logits[:8]), True
        done = {"clean": correct.cpu()}
        for spec in specs:
            done[f"robust/{spec.label}"] = recorded(batch_index, f"robust/{spec.label}", partial(
                _robust_mask, model, attack_model, x, y, correct, spec, eps, norm, precision, seed + batch_index))
        inputs = MetricBatch(model, attack_model, x, y, logits, eps, norm, derive_seed(seed, batch_index), precision)
        for spec in metric_specs:
            done[f"metric/{spec.label}"] = recorded(batch_index, f"metric/{spec.label}", lambda spec=spec: (
                metric_info(spec.name).compute(inputs, **spec.kwargs).float()))
        units[batch_index] = done
    model.train(was_training)
    if world > 1:
        for part in distributed.all_gather_object(units):
            units.update(part)
    ordered = [units[i] for i in sorted(units)]

    def joined(unit: str) -> Tensor:
        return torch.cat([u[unit] for u in ordered])

    clean = joined("clean")
    per_attack = {spec.label: joined(f"robust/{spec.label}") for spec in specs}
    values = {spec.label: joined(f"metric/{spec.label}") for spec in metric_specs}
    worst = clean.clone()
    for mask in per_attack.values():
        worst &= mask
    total = max(len(clean), 1)
    result = EvaluationResult(
        model=model_name, dataset=dataset_name, split=split, n=len(clean), eps=eps, norm=norm,
        clean=clean.sum().item() / total,
        attacks={spec.label: AttackResult(spec.label, per_attack[spec.label].sum().item() / total,
                                          spec.resolved_kwargs()) for spec in specs},
        worst_case=worst.sum().item() / total,
        metrics={label: float(v.mean()) for label, v in values.items()},
        per_example=PerExample(clean, per_attack, values),
    )  # fmt: skip
    result.audit = run_audit(model, audit_batch, result) if audit and audit_batch is not None else []
    result.seconds = time.perf_counter() - started
    return result


def _labels_digest(dataset: Dataset) -> str | None:
    """SHA-256 of the dataset's labels, or None for a dataset without ``targets``."""
    try:
        return hashlib.sha256(dataset_targets(dataset).tobytes()).hexdigest()
    except TypeError:
        return None


def _image_size(dataset: Dataset) -> int | None:
    """Values per image (C·H·W) of the dataset's first example, if it has one."""
    if len(dataset) == 0:
        return None
    image = dataset[0][0]
    return int(image.numel()) if isinstance(image, Tensor) else None


def _robust_mask(
    model: nn.Module, attack_model: nn.Module, x: Tensor, y: Tensor, correct: Tensor, spec: AttackSpec,
    eps: float, norm: str, precision: str, seed: int,
) -> Tensor:
    """Which examples stay correctly classified under the attack (attacked only if clean-correct):
    the attack runs on ``attack_model`` (the model or its faster copy), the check on ``model``."""
    mask = torch.zeros_like(correct)
    index = correct.nonzero().squeeze(1)
    if len(index) == 0:
        return mask
    kwargs = spec.resolved_kwargs()
    if precision != "fp32":
        kwargs["precision"] = precision
    if norm != "linf":  # every attack that supports another norm takes norm=
        kwargs["norm"] = norm
    attack = attack_registry.get(spec.name)
    # Seeding per batch makes every attack's randomness reproducible without touching the
    # caller's global random state.
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        x_adv = attack(attack_model, x[index], y[index], eps, **kwargs)
    with torch.no_grad():
        mask[index] = model(x_adv).argmax(1) == y[index]
    return mask
