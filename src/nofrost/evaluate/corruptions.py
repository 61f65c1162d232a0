"""Corruption benchmarks (CIFAR-10-C, ImageNet-C): accuracy at every corruption × severity.

:func:`evaluate_corruptions` is the one loop: it loads each (corruption, severity) set of a
dataset registered with corruption variants, measures the model's accuracy on it (no attacks:
the benchmark is accuracy under corruption) with the batched :func:`evaluate`, and returns an
:class:`EvaluationResult` with ``corruptions``, ``mean_corruption_accuracy`` and, for a dataset
that names a reference model's errors (ImageNet-C: AlexNet), the mCE.

mCE (Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions and
Perturbations", ICLR 2019, Sec. 3): the corruption error of corruption c is
``CE_c = Σ_s E_{s,c} / Σ_s E^AlexNet_{s,c}`` over severities s = 1..5, with E the top-1 error;
mCE is the mean of CE_c over the 15 benchmark corruptions. AlexNet's errors ship as their
mean over severities (``assets/imagenet_ood.json``), so ``CE_c = mean_s E_{s,c} /
alexnet_err_c``.

Relative mCE (ibid.) measures the drop from clean accuracy instead:
``relative CE_c = Σ_s (E_{s,c} − E_clean) / Σ_s (E^AlexNet_{s,c} − E^AlexNet_clean)``, i.e.
``(mean_s E_{s,c} − E_clean) / (alexnet_err_c − alexnet_clean)``, averaged over the 15. E_clean is
the model's error on the same images uncorrupted (for ImageNet-C: the ImageNet val images, resized
to 256 and center-cropped to 224 as ImageNet-C was made), so it needs that folder too. AlexNet's
clean error is torchvision's published accuracy of the checkpoint the reference code loads
(``assets/imagenet_ood.json`` names the source).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from nofrost.data import describe_dataset, list_datasets, load_dataset, stratified_subset
from nofrost.data.corruptions import BENCHMARK_CORRUPTIONS, EXTRA_CORRUPTIONS, SEVERITIES, list_corruptions
from nofrost.evaluate.result import CorruptionResult, EvaluationResult
from nofrost.evaluate.robustness import evaluate

__all__ = ["CORRUPTION_GROUPS", "corruption_datasets", "evaluate_corruptions", "mce", "parse_corruptions",
           "parse_severities", "relative_mce", "relative_mce_datasets"]

#: Names that stand for several corruptions in ``--corruptions``.
CORRUPTION_GROUPS: dict[str, tuple[str, ...]] = {
    "all": tuple(list_corruptions()), "benchmark": BENCHMARK_CORRUPTIONS, "extra": EXTRA_CORRUPTIONS,
}


def corruption_datasets() -> list[str]:
    """The registered datasets that take ``corruption=`` and ``severity=``."""
    return [name for name in list_datasets() if describe_dataset(name).variant("corruption") is not None]


def relative_mce_datasets() -> list[str]:
    """The corruption benchmarks that can report relative mCE: they name their uncorrupted
    source and a reference clean error."""
    return [name for name in corruption_datasets() if describe_dataset(name).has_relative_mce]


def parse_corruptions(text: str | Sequence[str] | None) -> list[str]:
    """``"fog,snow"``, a group (``all``, ``benchmark``: the 15, ``extra``: the 4) or a list, as
    corruption names in benchmark order; None: all 19."""
    items = [t.strip() for t in text.split(",")] if isinstance(text, str) else list(text or ["all"])
    chosen: set[str] = set()
    for item in filter(None, items):
        if item in CORRUPTION_GROUPS:
            chosen.update(CORRUPTION_GROUPS[item])
        elif item in list_corruptions():
            chosen.add(item)
        else:
            raise ValueError(f"unknown corruption {item!r}; valid: {', '.join(list_corruptions())} "
                             f"(or {', '.join(CORRUPTION_GROUPS)})")
    if not chosen:
        raise ValueError(f"no corruption named in {text!r}")
    return [name for name in list_corruptions() if name in chosen]


def parse_severities(text: str | Sequence[int] | None) -> list[int]:
    """``"1,3"`` or a list of severities in 1-5, sorted; None: all five."""
    items = text.split(",") if isinstance(text, str) else list(text or SEVERITIES)
    try:
        levels = sorted({int(item) for item in items if str(item).strip()})
    except ValueError:
        raise ValueError(f"severities: expected numbers in 1-5 such as 1,3; got {text!r}") from None
    wrong = [s for s in levels if s not in SEVERITIES]
    if wrong or not levels:
        raise ValueError(f"severity {wrong[0] if wrong else text!r} is out of range; valid: "
                         f"{', '.join(map(str, SEVERITIES))}")
    return levels


def _complete(corruptions: Mapping[str, CorruptionResult]) -> bool:
    """Whether all 15 benchmark corruptions were evaluated at all 5 severities."""
    return all(name in corruptions and set(corruptions[name].by_severity) == set(SEVERITIES)
               for name in BENCHMARK_CORRUPTIONS)


def mce(corruptions: Mapping[str, CorruptionResult], reference_errors: Mapping[str, float]) -> float | None:
    """AlexNet-normalized mean corruption error (fraction; see the module docstring), or None
    unless all 15 benchmark corruptions were evaluated at all 5 severities."""
    if not _complete(corruptions):
        return None
    errors = [(1 - corruptions[name].mean) / reference_errors[name] for name in BENCHMARK_CORRUPTIONS]
    return sum(errors) / len(errors)


def relative_mce(corruptions: Mapping[str, CorruptionResult], clean_accuracy: float,
                 reference_errors: Mapping[str, float], reference_clean_error: float) -> float | None:
    """AlexNet-normalized mean of the error added by each corruption over ``clean_accuracy``'s
    error (fraction; see the module docstring), or None unless the 15 × 5 sets are complete."""
    if not _complete(corruptions):
        return None
    clean_error = 1 - clean_accuracy
    errors = [((1 - corruptions[name].mean) - clean_error) / (reference_errors[name] - reference_clean_error)
              for name in BENCHMARK_CORRUPTIONS]
    return sum(errors) / len(errors)


def evaluate_corruptions(
    model: nn.Module,
    dataset: str,
    root: str | os.PathLike[str] | None = None,
    *,
    split: str = "test",
    corruptions: str | Sequence[str] | None = None,
    severities: str | Sequence[int] | None = None,
    n: int | None = None,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    seed: int = 0,
    precision: str = "fp32",
    image_size: int | None = None,
    progress: bool = False,
    model_name: str = "",
    clean_root: str | os.PathLike[str] | None = None,
) -> EvaluationResult:
    """Accuracy of ``model`` on ``dataset`` (a corruption benchmark, e.g. ``cifar10-c``) under
    each of ``corruptions`` at each of ``severities`` (default: all 19 at 1-5).

    ``n``: a class-stratified subset of ``n`` images per corruption and severity (the same
    images in each, chosen by ``seed``). The result's ``n`` is the number of images evaluated
    in all, ``clean`` (and ``worst_case``) the accuracy over all of them; no attack runs and no
    audit (it checks attacks). A progress bar with an ETA runs over the sets.

    ``clean_root``: for a benchmark that declares its uncorrupted source and a reference clean
    error (ImageNet-C: the ImageNet folder), the accuracy on the same images uncorrupted
    (``uncorrupted_accuracy``) is measured too, and with it the relative mCE.
    """
    started = time.perf_counter()
    entry = describe_dataset(dataset)
    if entry.variant("corruption") is None:
        raise ValueError(f"dataset {dataset!r} has no corruptions; corruption benchmarks: "
                         f"{', '.join(corruption_datasets())}")
    names, levels = parse_corruptions(corruptions), parse_severities(severities)
    uncorrupted = None
    if clean_root is not None:
        if not entry.has_relative_mce:
            raise ValueError(f"clean_root is for a benchmark with a reference clean error (relative mCE: "
                             f"{', '.join(relative_mce_datasets())}); {dataset!r} has none")
        source, source_split = entry.uncorrupted
        uncorrupted = load_dataset(source, source_split, clean_root, image_size=image_size)
    for name in names:  # a missing file, folder or frost texture fails now, not after hours of work
        load_dataset(dataset, split, root, image_size=image_size, corruption=name, severity=levels[0])
    sets = [(name, level) for name in names for level in levels]
    accuracy: dict[str, dict[int, float]] = {}
    correct = total = 0.0
    bar = tqdm(sets, disable=not progress, desc=f"{dataset}", unit="set")
    for name, level in bar:
        bar.set_postfix_str(f"{name} {level}")
        data = load_dataset(dataset, split, root, image_size=image_size, corruption=name, severity=level)
        if n is not None:
            data = stratified_subset(data, n, seed)
        if callable(getattr(data, "materialize", None)):  # a generated set: make (or read) its images now
            data = data.materialize()
        cell = evaluate(model, data, attacks="clean", batch_size=batch_size, device=device, seed=seed,
                        precision=precision, audit=False)
        accuracy.setdefault(name, {})[level] = cell.clean
        correct += cell.clean * cell.n
        total += cell.n
    results = {name: CorruptionResult(name, by_severity) for name, by_severity in accuracy.items()}
    reference = entry.reference_errors() if entry.reference_errors is not None else None
    uncorrupted_accuracy = relative = None
    if uncorrupted is not None:
        if n is not None:  # the same positions as in every corrupted set: the same images
            uncorrupted = stratified_subset(uncorrupted, n, seed)
        uncorrupted_accuracy = evaluate(model, uncorrupted, attacks="clean", batch_size=batch_size, device=device,
                                        seed=seed, precision=precision, audit=False).clean
        relative = relative_mce(results, uncorrupted_accuracy, reference, entry.reference_clean_error())
    pooled = correct / max(total, 1)
    return EvaluationResult(
        model=model_name, dataset=dataset, split=split, n=int(total), eps=0.0, clean=pooled, worst_case=pooled,
        corruptions=results, mean_corruption_accuracy=sum(c.mean for c in results.values()) / len(results),
        mce=mce(results, reference) if reference is not None else None,
        uncorrupted_accuracy=uncorrupted_accuracy, relative_mce=relative,
        seconds=time.perf_counter() - started,
    )

