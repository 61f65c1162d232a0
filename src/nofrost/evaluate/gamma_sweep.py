"""The MBNAT accuracy–robustness trade-off: evaluate an MBN model at a sweep of γ.

NoFrost paper (Wang et al., ICML 2022), Sec. 4.2, Figure 2 (and Figure 5 for the other
interpolation modes): an MBNAT model has no single operating point; sweeping the test-time
weight γ between its BN_c and BN_a paths (``nofrost.models.mbn.interpolated``) traces a
curve of (clean accuracy, robust accuracy) pairs, which NoFrost runs are compared against.

Every point is one call of :func:`nofrost.evaluate.evaluate` (same examples, same attacks,
same seed) on ``interpolated(model, γ, mode)``, so the attacks are white-box through the
interpolation and every point carries its audit. Plot the result with
:func:`nofrost.report.tradeoff.tradeoff_plot`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch.utils.data import Dataset

from nofrost.evaluate.robustness import AttackSpec, evaluate
from nofrost.evaluate.sweep_result import SweepPoint, SweepReference, SweepResult, SweepRun

DEFAULT_GAMMAS: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(11))  # 0, 0.1, ..., 1


def curve_label(mode: str, p: float | None = None) -> str:
    """How the paper names the curve: "MBNAT (logits)", "MBNAT (all)", "MBNAT (random 50%)"."""
    return f"MBNAT (random {p:g}%)" if mode == "random" else f"MBNAT ({mode})"


def gamma_sweep(
    model_dir: str | Path,
    dataset: str | Dataset,
    gammas: Sequence[float] = DEFAULT_GAMMAS,
    *,
    attacks: str | Sequence[str | AttackSpec] = ("pgd",),
    eps: float = 8 / 255,
    n: int | None = 1000,
    mode: str = "logits",
    p: float = 50.0,
    seed: int = 0,
    nofrost_runs: Sequence[str | Path] = (),
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    data_root: str | Path | None = None,
    image_size: int | None = None,
    split: str = "test",
    progress: bool = False,
) -> SweepResult:
    """Clean and robust accuracy of the MBN model in ``model_dir`` at each γ in ``gammas``.

    Args:
        model_dir: an MBNAT run directory (or anything ``nofrost.load_model`` reads) whose
            model has mixture-BN layers (``model.norm: mbn``).
        dataset: a dataset name (``"cifar10-mini"``, ``"cifar10"``, ``"imagenet"``; loaded with
            ``data_root`` / ``image_size``, split ``split``) or a Dataset of ([0, 1] image, label).
        gammas: the interpolation weights, each in [0, 1] (default 0, 0.1, ..., 1).
        attacks: attack specs as for ``evaluate`` (e.g. ``["pgd", "apgd-ce"]``); ``clean`` is
            always measured.
        eps: ℓ∞ radius of the attacks (8/255, not 8).
        n: how many (class-stratified) examples to evaluate; None: all. Every point uses the
            same examples.
        mode: the interpolation ("logits", "all" or "random"; see ``interpolated``).
        p: for ``mode="random"``, the percentage of MBN layers that mix.
        seed: the evaluation seed (example subset, attack randomness; the same for every
            point) and, for ``mode="random"``, which layers mix.
        nofrost_runs: run directories of models to show as single points (e.g. NoFrost),
            evaluated identically.
        batch_size, device, progress: as for ``evaluate``.

    Returns a :class:`~nofrost.evaluate.sweep_result.SweepResult` over the grid key ``gamma``
    (values as ``f"{γ:g}"``, one seed), labelled as the paper names the curve ("MBNAT
    (logits)"): each point's full evaluation result (accuracies as fractions, audit), and the
    ``nofrost_runs`` as its references.
    """
    from nofrost.data import load_dataset
    from nofrost.models import load_model
    from nofrost.models.mbn import INTERPOLATION_MODES, interpolated, mbn_layers

    if mode not in INTERPOLATION_MODES:
        raise ValueError(f"mode must be one of {', '.join(INTERPOLATION_MODES)}, got {mode!r}")
    gammas = [float(g) for g in gammas]
    if not gammas:
        raise ValueError("gammas is empty; give at least one γ in [0, 1]")
    bad = [g for g in gammas if not 0.0 <= g <= 1.0]
    if bad:
        raise ValueError(f"every γ must lie in [0, 1], got {bad}")
    dataset_name = dataset if isinstance(dataset, str) else type(dataset).__name__
    if isinstance(dataset, str):
        dataset = load_dataset(dataset, split, data_root, image_size=image_size)

    model = load_model(model_dir, device=device)
    if not mbn_layers(model):
        raise ValueError(
            f"{str(model_dir)!r} holds a model without mixture-BN layers; a γ sweep needs an MBNAT run "
            f"(model.norm: mbn). Pass NoFrost runs as nofrost_runs=..."
        )

    common = dict(attacks=attacks, eps=eps, n=n, batch_size=batch_size, device=device, seed=seed,
                  progress=progress, dataset_name=dataset_name, split=split)
    runs = []
    for gamma in gammas:
        wrapped = interpolated(model, gamma, mode, p=p, seed=seed)
        result = evaluate(wrapped, dataset, model_name=f"{Path(model_dir).name}@gamma={gamma:g}", **common)
        runs.append(SweepRun(SweepPoint((("gamma", f"{gamma:g}"),), seed), result))
    references = []
    for run in nofrost_runs:
        result = evaluate(load_model(run, device=device), dataset, model_name=Path(run).name, **common)
        references.append(SweepReference(Path(run).name, str(run), result))
    return SweepResult({"gamma": [f"{g:g}" for g in gammas]}, [seed], runs, label=curve_label(mode, p),
                       references=references)
