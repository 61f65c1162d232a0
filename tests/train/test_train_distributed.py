"""DDP under torchrun on CPU (gloo): a global batch split across processes is the same training.

Each test starts real ``torchrun`` processes. For a model without batch norm, 2 processes with
half the batch each must end with the parameters of 1 process with the whole batch; batch norm
keeps per-process statistics unless ``runtime.sync_bn`` is set (CUDA only), and then matches too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from nofrost.config import load_config
from nofrost.train import train
from nofrost.train.loop import build_model_for

WORKER = Path(__file__).with_name("ddp_train.py")

# Deterministic per example (no augmentation, no random PGD start, no dropout), so the split
# of the batch across processes is the only difference between runs.
TRAIN_N, EVAL_N = 256, 64
DDP_OVERRIDES = [
    "model.width=8",
    f"data.train_n={TRAIN_N}",
    f"data.eval_n={EVAL_N}",
    "data.augment=false",
    "optim.batch_size=64",
    "optim.epochs=2",
    "attack.steps=2",
    "attack.random_start=false",
    "runtime.device=cpu",
    "runtime.cpu_bf16=false",  # fp32 sums in two orders agree to rounding; bf16 ones would not
]


def torchrun(*args: str, nproc: int = 2) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args],
        env=env, capture_output=True, text=True, timeout=600,
    )


def check(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def single_process(overrides: list[str], out: Path) -> dict[str, torch.Tensor]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each torchrun process (OMP_NUM_THREADS=1)
    try:
        train(load_config("quickstart", overrides=overrides), out, quiet=True)
    finally:
        torch.set_num_threads(threads)
    return load_file(out / "model.safetensors")


# Sums over the batch run in another order, so weights agree to float rounding at first; PGD's
# sign() then turns a rounding difference into a whole step on the odd pixel, and after a few
# optimizer steps the weights agree to about 1e-4. Training moves them by more than 1e-2
# (checked below), so a missing gradient average or a wrong data split would not pass.
ATOL, RTOL = 2e-4, 1e-3
# Examples whose prediction may flip between the two runs (see the metrics check below).
NEAR_TIES = 4


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=RTOL, atol=ATOL, msg=name)


def initial_weights(overrides: list[str]) -> dict[str, torch.Tensor]:
    config = load_config("quickstart", overrides=overrides)
    torch.manual_seed(config.runtime.seed)
    return build_model_for(config).state_dict()


def test_two_processes_with_half_batches_train_the_nf_model_one_process_trains(tmp_path):
    overrides = [*DDP_OVERRIDES, "model.norm=none", "method.name=sat"]
    check(torchrun("-m", "nofrost", "train", "--preset", "quickstart", "--out", str(tmp_path / "ddp"),
                   "--no-eval", "--quiet", *[f"--set={o}" for o in overrides]))
    ddp = load_file(tmp_path / "ddp" / "model.safetensors")
    single = single_process(overrides, tmp_path / "single")
    assert_same_weights(ddp, single)
    initial = initial_weights(overrides)
    assert max((ddp[k] - initial[k]).abs().max().item() for k in ddp) > 50 * ATOL
    # Rank 0 alone wrote the run directory, with metrics over the whole global batch.
    records = [json.loads(line) for line in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    single_records = [json.loads(line) for line in (tmp_path / "single" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    for r, s in zip(records, single_records):
        assert r["train_loss"] == pytest.approx(s["train_loss"], rel=1e-4)
        # An accuracy counts argmaxes: the last-bit differences between the two reductions flip
        # the odd near-tie prediction (2 of 256 on an AMD EPYC), so counts agree to a few examples.
        for key, n in (("train_adv_acc", TRAIN_N), ("eval_clean_acc", EVAL_N)):
            assert abs(r[key] * n - s[key] * n) <= NEAR_TIES, (key, r[key], s[key])


def test_bn_model_keeps_per_process_statistics_and_resumes_exactly(tmp_path):
    overrides = [*DDP_OVERRIDES, "model.norm=bn", "optim.epochs=3"]
    check(torchrun(str(WORKER), str(tmp_path / "full"), "0", *overrides))
    full = load_file(tmp_path / "full" / "model.safetensors")

    stopped = torchrun(str(WORKER), str(tmp_path / "cut"), "2", *overrides)
    assert stopped.returncode != 0
    assert not (tmp_path / "cut" / "model.safetensors").exists()
    check(torchrun(str(WORKER), str(tmp_path / "cut"), "0", "--resume", *overrides))
    resumed = load_file(tmp_path / "cut" / "model.safetensors")
    for name in full:
        assert torch.equal(full[name], resumed[name]), name
    epochs = [json.loads(line)["epoch"] for line in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]

    # Per-process BN statistics: not the single-process training (that is what sync_bn is for).
    single = single_process(overrides, tmp_path / "single")
    assert not torch.allclose(full["net.stem.weight"], single["net.stem.weight"], rtol=RTOL, atol=ATOL)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="SyncBatchNorm needs 2 CUDA devices")
def test_sync_bn_makes_a_bn_model_train_as_with_the_whole_batch(tmp_path):
    overrides = [*DDP_OVERRIDES, "model.norm=bn", "runtime.device=cuda", "runtime.bf16=false"]
    check(torchrun(str(WORKER), str(tmp_path / "sync"), "0", *overrides, "runtime.sync_bn=true"))
    synced = load_file(tmp_path / "sync" / "model.safetensors")
    single = single_process(overrides, tmp_path / "single")
    assert_same_weights(synced, single)


def test_sync_bn_on_cpu_is_refused_with_advice(tmp_path):
    proc = torchrun(str(WORKER), str(tmp_path / "sync"), "0", *DDP_OVERRIDES, "model.norm=bn", "runtime.sync_bn=true")
    assert proc.returncode != 0
    assert "SyncBatchNorm runs on CUDA only; on CPU drop runtime.sync_bn" in proc.stderr


def test_global_batch_must_split_evenly(tmp_path):
    proc = torchrun(str(WORKER), str(tmp_path / "odd"), "0", *DDP_OVERRIDES, "optim.batch_size=63")
    assert proc.returncode != 0
    assert "global batch and must divide evenly among 2 processes" in proc.stderr


RESTART_WORKER = Path(__file__).parent / "ddp_restart.py"


def test_a_rank_killed_mid_epoch_restarts_and_ends_in_the_uninterrupted_weights(tmp_path):
    """torchrun --max-restarts re-runs the same `train --resume auto` command after rank 1 dies
    in the middle of epoch 2 (step 6 of 8: 4 steps an epoch); the run continues from epoch 1's
    checkpoint and ends in exactly the weights of a run that was never interrupted."""
    sets = [a for o in [*DDP_OVERRIDES, "model.norm=none"] for a in ("--set", o)]

    def command(out: Path, kill_step: int) -> list[str]:
        return ["--max-restarts=1", str(RESTART_WORKER), str(kill_step), "--preset", "quickstart", *sets,
                "--out", str(out), "--resume", "auto", "--no-eval", "--quiet"]

    check(torchrun(*command(tmp_path / "full", 0)))
    restarted = torchrun(*command(tmp_path / "cut", 6))
    check(restarted)
    assert "rank 1 dies at step 6 of attempt 0" in restarted.stderr  # the worker was lost mid-epoch 2
    full = load_file(tmp_path / "full" / "model.safetensors")
    cut = load_file(tmp_path / "cut" / "model.safetensors")
    for name in full:
        assert torch.equal(full[name], cut[name]), name
    epochs = [json.loads(line)["epoch"] for line in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2]
