"""Resumable evaluation: interrupted in the middle, continued, equal to an uninterrupted run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import nofrost
import nofrost.evaluate.robustness as robustness
from nofrost.cli import main
from nofrost.data import load_dataset
from nofrost.evaluate import evaluate

ASSET = Path(__file__).resolve().parents[1] / "assets" / "cifar_resnet10_sat_bn"
OPTIONS = dict(attacks="pgd:steps=2,square:queries=10", metrics="margin", n=48, batch_size=16, seed=2)


class Interrupted(Exception):
    pass


def interrupt_after(monkeypatch, calls: int) -> list[int]:
    """Make the evaluation's attack step raise on its ``calls``-th call; count every call."""
    real, seen = robustness._robust_mask, []

    def counted(*args, **kwargs):
        seen.append(1)
        if len(seen) == calls:
            raise Interrupted
        return real(*args, **kwargs)

    monkeypatch.setattr(robustness, "_robust_mask", counted)
    return seen


def same(a, b):
    assert a.to_json() | {"seconds": 0} == b.to_json() | {"seconds": 0}
    for label in a.per_example.robust:
        assert torch.equal(a.per_example.robust[label], b.per_example.robust[label])
    assert torch.equal(a.per_example.metrics["margin"], b.per_example.metrics["margin"])


def test_an_interrupted_evaluation_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    model, data = nofrost.load_model(ASSET), load_dataset("cifar10-mini", "test")
    full = evaluate(model, data, **OPTIONS)
    state = tmp_path / "eval.state.pt"
    interrupt_after(monkeypatch, 4)  # 3 batches × 2 attacks: stop in batch 2, after its first attack
    with pytest.raises(Interrupted):
        evaluate(model, data, state_path=state, **OPTIONS)
    assert state.is_file()
    seen = interrupt_after(monkeypatch, 0)
    resumed = evaluate(model, data, state_path=state, resume=True, **OPTIONS)
    assert len(seen) == 3  # batch 2's second attack and batch 3's two: nothing done twice
    same(resumed, full)


def test_resuming_another_evaluation_is_refused(tmp_path, monkeypatch):
    model, data = nofrost.load_model(ASSET), load_dataset("cifar10-mini", "test")
    state = tmp_path / "eval.state.pt"
    interrupt_after(monkeypatch, 2)
    with pytest.raises(Interrupted):
        evaluate(model, data, state_path=state, **OPTIONS)
    with pytest.raises(ValueError, match=r"attacks: was .*pgd:steps=2.*now .*pgd:steps=3"):
        evaluate(model, data, state_path=state, resume=True, **{**OPTIONS, "attacks": "pgd:steps=3,square:queries=10"})
    with pytest.raises(ValueError, match="the model's weights differ"):
        evaluate(nofrost.load_model(ASSET.with_name("cifar_resnet10_nofrost_nf")), data, state_path=state,
                 resume=True, **OPTIONS)
    with pytest.raises(FileExistsError, match="continue it with --resume"):
        evaluate(model, data, state_path=state, **OPTIONS)  # never silently overwritten
    state.write_bytes(b"not a state")
    with pytest.raises(ValueError, match="not a readable evaluation state"):
        evaluate(model, data, state_path=state, resume=True, **OPTIONS)


def test_cli_keeps_progress_until_the_result_is_written(tmp_path, monkeypatch, capsys):
    out = tmp_path / "eval.json"
    argv = ["evaluate", str(ASSET), "--data", "cifar10-mini", "--n", "32", "--batch-size", "16",
            "--attacks", "pgd:steps=2", "--json", str(out), "--quiet"]
    interrupt_after(monkeypatch, 2)
    with pytest.raises(Interrupted):
        main(argv)
    assert (tmp_path / "eval.state.pt").is_file() and not out.exists()
    assert main(argv) == 2 and "continue it with --resume" in capsys.readouterr().err
    interrupt_after(monkeypatch, 0)
    assert main([*argv, "--resume"]) == 0
    assert out.is_file() and not (tmp_path / "eval.state.pt").exists()
    assert main([*argv[:-3], "--quiet", "--resume"]) == 2  # no --json, nothing to continue
    assert main([*argv, "--resume"]) == 2 and "no interrupted evaluation" in capsys.readouterr().err
