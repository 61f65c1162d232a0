"""Real tiny runs for the report tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from nofrost.cli import main


def _sets(overrides):
    return [arg for o in overrides for arg in ("--set", o)]


@pytest.fixture(scope="session")
def runs(tmp_path_factory, tiny_overrides) -> dict[str, Path]:
    """Two tiny real runs, SAT on a BN network and NoFrost (SAT on the NF network), one with an
    ε curve beside its result."""
    root = tmp_path_factory.mktemp("report")
    made = {}
    for name, norm in (("sat-bn", "bn"), ("nofrost-nf", "none")):
        made[name] = root / name
        assert main(["train", "--preset", "quickstart", *_sets(tiny_overrides), "--set", f"model.norm={norm}",
                     "--out", str(made[name]), "--quiet"]) == 0
    assert main(["evaluate", str(made["nofrost-nf"]), "--data", "cifar10-mini", "--n", "24", "--attacks",
                 "pgd:steps=2", "--eps", "4/255,8/255", "--quiet"]) == 0
    return made
