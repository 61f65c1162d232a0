"""Terminal output policy shared by the trainer, evaluation and the CLI."""

from __future__ import annotations

import sys


def progress_enabled(quiet: bool = False) -> bool:
    """Progress bars only for a person watching: off with --quiet or when stderr is not a terminal."""
    return not quiet and sys.stderr.isatty()
