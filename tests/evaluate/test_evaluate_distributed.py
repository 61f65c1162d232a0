"""`torchrun --nproc_per_node=2 -m nofrost evaluate` (gloo, CPU): the same result as one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from nofrost.cli import main

ASSET = Path(__file__).resolve().parents[1] / "assets" / "cifar_resnet10_sat_bn"
ARGS = ["--data", "cifar10-mini", "--n", "48", "--batch-size", "16", "--attacks", "pgd:steps=2,square:queries=10",
        "--metrics", "margin", "--device", "cpu", "--quiet"]


def test_two_processes_give_the_one_process_result(tmp_path):
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    assert main(["evaluate", str(ASSET), *ARGS, "--json", str(one)]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        # "--": torchrun would read nofrost's --n as an abbreviation of its own --nnodes.
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "nofrost",
         "--", "evaluate", str(ASSET), *ARGS, "--json", str(two)],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("wrote ") == 1  # rank 0 alone reports and writes
    a, b = json.loads(one.read_text()), json.loads(two.read_text())
    assert a | {"seconds": 0} == b | {"seconds": 0}
    with np.load(one.with_suffix(".npz")) as x, np.load(two.with_suffix(".npz")) as y:
        assert sorted(x) == sorted(y) and all(np.array_equal(x[k], y[k]) for k in x)
    assert not list(tmp_path.glob("*.state*.pt"))  # progress files are gone once the result is written
