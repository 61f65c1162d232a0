"""The accuracy–robustness trade-off plot of the NoFrost paper (Figures 2 and 5).

x: clean accuracy (%), y: robust accuracy (%); one panel per attack. Each sweep
(:class:`~nofrost.evaluate.sweep_result.SweepResult`: an MBNAT γ sweep, or a training sweep
over λ, ...) is a curve whose points are its settings (means over seeds), tagged by the swept
values; each of its ``references`` (NoFrost runs evaluated alongside) is a single starred
point. A point closer to the top-right corner is a better trade-off.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # figures are files; never open a window or need a display
import matplotlib.pyplot as plt  # noqa: E402

from nofrost.evaluate.suites import display_name  # noqa: E402
from nofrost.evaluate.sweep_result import WORST_CASE, SweepResult, accuracy_of  # noqa: E402


def tradeoff_plot(
    sweeps: SweepResult | Sequence[SweepResult],
    path: str | Path,
    *,
    attacks: Sequence[str] | None = None,
    title: str = "",
) -> Path:
    """Draw the clean-vs-robust accuracy trade-off of ``sweeps`` to the PNG file ``path``.

    Args:
        sweeps: one sweep, or several over the same attacks (e.g. one per interpolation mode,
            as in the paper's Figure 5); each is a curve named by its ``name``. Their
            references are drawn once each (by run).
        path: the output file (PNG; the suffix picks the format).
        attacks: which attack labels get a panel, in order (default: all of the first
            sweep's attacks); ``"worst-case"`` plots the per-example worst case.
        title: a figure title.

    Returns ``Path(path)``.
    """
    sweeps = [sweeps] if isinstance(sweeps, SweepResult) else list(sweeps)
    if not sweeps or not sweeps[0].runs:
        raise ValueError("tradeoff_plot needs at least one sweep with evaluated runs")
    panels = list(attacks) if attacks is not None else sweeps[0].labels
    if not panels:
        raise ValueError("the sweeps hold no attack: evaluate them with at least one attack")
    for sweep in sweeps:
        missing = [a for a in panels if a != WORST_CASE and a not in sweep.labels]
        if missing:
            raise ValueError(f"attack(s) {missing} not in the sweep {sweep.name!r}; it has {sweep.labels}")

    cols = min(len(panels), 2)
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.9 * rows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, attack in zip(axes.flat, panels):
        for sweep in sweeps:
            xs = [100 * sweep.aggregate(s, "clean")[0] for s in sweep.settings]
            ys = [100 * sweep.aggregate(s, attack)[0] for s in sweep.settings]
            (line,) = ax.plot(xs, ys, marker="o", markersize=4, linewidth=1.2, label=sweep.name)
            for setting, x, y in zip(sweep.settings, xs, ys):
                ax.annotate(sweep.point_tag(setting), (x, y), textcoords="offset points", xytext=(4, 3),
                            fontsize=6.5, color=line.get_color())
        seen = set()
        for sweep in sweeps:
            for reference in sweep.references:
                if reference.run in seen:
                    continue
                seen.add(reference.run)
                x, y = 100 * reference.result.clean, 100 * accuracy_of(reference.result, attack)
                ax.plot([x], [y], marker="*", markersize=13, linestyle="none", label=reference.label)
        ax.set_xlabel("clean accuracy (%)")
        ax.set_ylabel(f"robust accuracy (%), {attack if attack == WORST_CASE else display_name(attack)}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, frameon=False, loc="best")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path
