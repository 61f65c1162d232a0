"""Matplotlib figures, rendered off-screen to PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # figures are files; never open a window or need a display
import matplotlib.pyplot as plt  # noqa: E402


def accuracy_chart(labels: list[str], series: dict[str, list[float]], path: str | Path, title: str = "") -> Path:
    """Grouped bars: one group per label (model), one bar per series (clean, PGD-20, ...), in %."""
    width = 0.8 / max(len(series), 1)
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(labels), 3.6))
    for i, (name, values) in enumerate(series.items()):
        positions = [j + (i - (len(series) - 1) / 2) * width for j in range(len(labels))]
        bars = ax.bar(positions, [100 * v for v in values], width, label=name)
        ax.bar_label(bars, fmt="%.1f", fontsize=8)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend(frameon=False)
    if title:
        ax.set_title(title)
    return _save(fig, path, dpi=120)


def _save(fig, path: str | Path, dpi: int = 130) -> Path:
    path = Path(path)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def _decorate(ax, xlabel: str, ylabel: str, title: str) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)


def running_stats_scatter(entries: list[tuple[str, list[float], list[float]]], path: str | Path,
                          title: str = "") -> Path:
    """The NoFrost paper's Figure 1: one dot per channel at (running mean, running variance),
    one colour per model; ``entries`` are ``(label, means, variances)``."""
    fig, ax = plt.subplots(figsize=(4.8, 4.0))
    for label, means, variances in entries:
        ax.scatter(means, variances, s=10, alpha=0.7, label=label)
    _decorate(ax, "running mean", "running variance", title)
    return _save(fig, path)


def depth_plot(lines: list[tuple[str, list[float], list[float]]], path: str | Path, ylabel: str,
               title: str = "") -> Path:
    """One line per model of a per-position value over relative depth; ``lines`` are
    ``(label, depths in (0, 1], values)``."""
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    for label, depths, values in lines:
        ax.plot(depths, values, marker="o", markersize=3, linewidth=1.2, label=label)
    ax.set_yscale("log")
    _decorate(ax, "relative depth (position / positions)", ylabel, title)
    return _save(fig, path)


def histograms(panels: list[tuple[str, dict[str, list[float]]]], path: str | Path, bins: int = 30) -> Path:
    """The NoFrost paper's Figure 6: one panel per metric (``(panel title, {model: values})``),
    one colour per model, shared bins within a panel."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, (title, series) in zip(axes[0], panels):
        values = [v for vs in series.values() for v in vs]
        low, high = (min(values), max(values)) if values else (0.0, 1.0)
        edges = [low + (high - low) * i / bins for i in range(bins + 1)] if high > low else bins
        for label, vs in series.items():
            ax.hist(vs, bins=edges, alpha=0.5, label=label)
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("examples")
        ax.legend(frameon=False, fontsize=7)
    return _save(fig, path)


def curves(xs: list[float], series: dict[str, list[float]], path: str | Path, xlabel: str, ylabel: str,
           title: str = "", dashed: Sequence[str] = ()) -> Path:
    """One line per series over ``xs`` (values in [0, 1], drawn in %); the ``dashed`` ones dashed
    (e.g. the worst case next to the attacks of Figure 7's ε curves)."""
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    for name, values in series.items():
        ax.plot(xs, [100 * v for v in values], marker="o", markersize=4, linewidth=1.3, label=name,
                linestyle="--" if name in dashed else "-")
    _decorate(ax, xlabel, ylabel, title)
    return _save(fig, path)


#: The per-epoch accuracies of metrics.jsonl that training curves draw, with their names.
TRAINING_ACCURACIES = (("train_clean_acc", "train clean"), ("train_adv_acc", "train adversarial"),
                       ("eval_clean_acc", "held-out clean"), ("select_robust_acc", "held-out robust"))


def training_curves(runs: list[tuple[str, list[dict]]], path: str | Path) -> Path:
    """Two panels over epochs: the training loss, and every accuracy ``metrics.jsonl`` records
    (one colour per run, one line style per accuracy); ``runs`` are ``(label, records)``."""
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10.4, 3.8))
    styles = ("-", "--", ":", "-.")
    for index, (label, records) in enumerate(runs):
        colour = f"C{index % 10}"
        epochs = [r["epoch"] for r in records]
        loss_ax.plot(epochs, [r.get("train_loss") for r in records], color=colour, marker="o", markersize=3,
                     label=label)
        for (key, name), style in zip(TRAINING_ACCURACIES, styles):
            points = [(r["epoch"], 100 * r[key]) for r in records if r.get(key) is not None]
            if points:
                acc_ax.plot(*zip(*points), color=colour, linestyle=style, marker="o", markersize=3,
                            label=f"{label}: {name}")
    _decorate(loss_ax, "epoch", "training loss", "")
    _decorate(acc_ax, "epoch", "accuracy (%)", "")
    return _save(fig, path)


def corruption_heatmap(corruptions: list[str], severities: list[int], accuracy: list[list[float | None]],
                       path: str | Path, title: str = "") -> Path:
    """Accuracy (%) per corruption (rows) and severity (columns), each cell labelled; a set not
    evaluated is left blank."""
    import numpy as np

    values = np.array([[np.nan if v is None else 100 * v for v in row] for row in accuracy], dtype=float)
    fig, ax = plt.subplots(figsize=(1.6 + 0.75 * len(severities), 0.9 + 0.32 * len(corruptions)))
    image = ax.imshow(values, cmap="viridis", vmin=0, vmax=100, aspect="auto")
    for (i, j), value in np.ndenumerate(values):
        if not np.isnan(value):
            ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=7,
                    color="white" if value < 50 else "black")
    ax.set_xticks(range(len(severities)), [str(s) for s in severities])
    ax.set_yticks(range(len(corruptions)), corruptions, fontsize=8)
    ax.set_xlabel("severity")
    fig.colorbar(image, ax=ax, label="accuracy (%)")
    if title:
        ax.set_title(title, fontsize=9)
    return _save(fig, path)
