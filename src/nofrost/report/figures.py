"""Matplotlib figures, rendered off-screen to PNG."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures are files; never open a window or need a display
import matplotlib.pyplot as plt  # noqa: E402


def accuracy_chart(labels: list[str], series: dict[str, list[float]], path: str | Path, title: str = "") -> Path:
    """Grouped bars: one group per label (model), one bar per series (clean, PGD-20, ...), in %."""
    path = Path(path)
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
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
