"""The accuracy–robustness trade-off plot of the NoFrost paper (Figures 2 and 5).

x: clean accuracy (%), y: robust accuracy (%); one panel per attack. Each MBNAT γ sweep
(:func:`nofrost.evaluate.gamma_sweep.gamma_sweep`) is a curve whose points are labelled by γ;
each NoFrost (or other) run evaluated alongside is a single starred point. A point closer to
the top-right corner is a better trade-off.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # figures are files; never open a window or need a display
import matplotlib.pyplot as plt  # noqa: E402

WORST_CASE = "worst-case"  # pseudo-attack label: the per-example worst case over all attacks


def _robust(entry: Mapping[str, Any], attack: str) -> float:
    if attack == WORST_CASE:
        return entry["worst_case"]
    return entry["attacks"][attack]


def _point_label(point: Mapping[str, Any]) -> str:
    """A point's tag on the curve: its ``label`` (a sweep's setting) or its γ (a γ sweep)."""
    return str(point["label"]) if "label" in point else f"γ={point['gamma']:g}"


def tradeoff_plot(
    result: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    path: str | Path,
    *,
    attacks: Sequence[str] | None = None,
    title: str = "",
) -> Path:
    """Draw the clean-vs-robust accuracy trade-off of ``result`` to the PNG file ``path``.

    Args:
        result: the dict returned by ``gamma_sweep`` (or JSON-loaded from one), or a list of
            them (e.g. one per interpolation mode, as in the paper's Figure 5) over the same
            attacks; each becomes a curve named by its ``label``. NoFrost points are taken
            from every result's ``nofrost`` list (the same run is drawn once).
        path: the output file (PNG; the suffix picks the format).
        attacks: which attack labels get a panel, in order (default: all of the first
            result's ``attacks``); ``"worst-case"`` plots the per-example worst case.
        title: a figure title.

    Returns ``Path(path)``.
    """
    results = [result] if isinstance(result, Mapping) else list(result)
    if not results:
        raise ValueError("tradeoff_plot needs at least one gamma_sweep result")
    panels = list(attacks) if attacks is not None else list(results[0]["attacks"])
    if not panels:
        raise ValueError("the results hold no attack: run gamma_sweep with at least one attack")
    for r in results:
        missing = [a for a in panels if a != WORST_CASE and a not in r["attacks"]]
        if missing:
            raise ValueError(f"attack(s) {missing} not in the result for {r.get('label', '?')!r}; it has {r['attacks']}")

    cols = min(len(panels), 2)
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.9 * rows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, attack in zip(axes.flat, panels):
        for r in results:
            xs = [100 * pt["clean"] for pt in r["points"]]
            ys = [100 * _robust(pt, attack) for pt in r["points"]]
            (line,) = ax.plot(xs, ys, marker="o", markersize=4, linewidth=1.2, label=r.get("label", "MBNAT"))
            for pt, x, y in zip(r["points"], xs, ys):
                ax.annotate(_point_label(pt), (x, y), textcoords="offset points", xytext=(4, 3),
                            fontsize=6.5, color=line.get_color())
        seen = set()
        for r in results:
            for other in r.get("nofrost", []):
                if other["run"] in seen:
                    continue
                seen.add(other["run"])
                x, y = 100 * other["clean"], 100 * _robust(other, attack)
                ax.plot([x], [y], marker="*", markersize=13, linestyle="none", label=other["label"])
        ax.set_xlabel("clean accuracy (%)")
        ax.set_ylabel(f"robust accuracy (%), {attack}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, frameon=False, loc="best")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path
