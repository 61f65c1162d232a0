"""Terminal output policy shared by the trainer, evaluation and the CLI."""

from __future__ import annotations

import sys


def progress_enabled(quiet: bool = False) -> bool:
    """Progress bars only for a person watching: off with --quiet or when stderr is not a terminal."""
    return not quiet and sys.stderr.isatty()


def eta_text(seconds: float) -> str:
    """``"42 s"``, ``"7 min"``, ``"2.5 h"``: a rough remaining time."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
