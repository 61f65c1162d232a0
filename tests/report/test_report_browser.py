"""The report page as a person sees it: rendered by a real headless Chromium.

Skips when no Chromium is installed (Debian: ``apt-get install -y chromium``; `.ci/run`
installs it where it can).
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from nofrost.report import write_report

BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
# matplotlib's first colour (C0, #1f77b4): bars and lines of the embedded figures.
FIGURE_BLUE = np.array([31, 119, 180])


def screenshot(page, png, tmp_path, width=1200, height=3600):
    """Chromium's headless screenshot of ``page``, flags as this project's machines need them
    (no sandbox as root; no background networking on a closed network)."""
    command = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}",
               f"--window-size={width},{height}", page.resolve().as_uri()]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    return np.asarray(Image.open(png).convert("RGB")).astype(int)


@pytest.mark.skipif(BROWSER is None, reason="no Chromium on this machine (apt-get install -y chromium)")
def test_report_renders_in_a_real_browser(runs, tmp_path):
    page, _ = write_report([runs["sat-bn"], runs["nofrost-nf"]], tmp_path / "report.html")
    pixels = screenshot(page, tmp_path / "shot.png", tmp_path)
    assert pixels.shape == (3600, 1200, 3)
    ink = (pixels.sum(axis=2) < 3 * 128)  # dark text and lines
    assert ink[:120].mean() > 0.002, "no title at the top of the page"
    rows_with_ink = ink.any(axis=1).mean()
    assert rows_with_ink > 0.3, f"the page looks mostly empty ({rows_with_ink:.0%} of its rows have any ink)"
    # The embedded figures are displayed, not broken-image icons: their blue shows.
    blue = (np.abs(pixels - FIGURE_BLUE).max(axis=2) < 12)
    assert blue.sum() > 2000, f"only {blue.sum()} pixels of the figures' blue: are the embedded images shown?"
