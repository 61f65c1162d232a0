"""The trainer: run directory contents, resume equivalence, divergence, refusing to overwrite."""

import json
import re

import pytest
import torch
import yaml

from nofrost import load_model
from nofrost.config import load_config
from nofrost.train import TrainingDiverged, train
from nofrost.train.checkpoint import load_checkpoint


def test_run_directory_follows_the_contract(tiny_config, tmp_path):
    result = train(tiny_config, tmp_path / "run", quiet=True)
    run = tmp_path / "run"
    for name in ["config.yaml", "metrics.jsonl", "checkpoint.pt", "model.safetensors", "model.json"]:
        assert (run / name).is_file(), name
    assert yaml.safe_load((run / "config.yaml").read_text()) == tiny_config.to_dict()
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    for r in records:
        assert r["train_loss"] > 0 and 0 <= r["train_clean_acc"] <= 1 and 0 <= r["train_adv_acc"] <= 1
        assert 0 <= r["eval_clean_acc"] <= 1
    assert not (run / "checkpoint.pt.tmp").exists() and not list(run.glob(".*.tmp"))
    # The final weights load back into the same function.
    loaded = load_model(run)
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(loaded(x), result.model.eval()(x), atol=1e-6)
    state = load_checkpoint(run / "checkpoint.pt")
    assert state["epoch"] == 2 and state["config"] == tiny_config.to_dict()


@pytest.mark.parametrize("norm", ["bn", "none"])
def test_resume_ends_in_the_same_model_as_an_uninterrupted_run(norm, tiny_overrides, tmp_path, interrupted_then_resumed):
    config = load_config("quickstart", overrides=[*tiny_overrides, "optim.epochs=3", f"model.norm={norm}", "model.dropout=0.2"])
    full = train(config, tmp_path / "full", quiet=True)
    resumed = interrupted_then_resumed(config, tmp_path / "cut", after_epochs=2)
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    metrics = [json.loads(line) for line in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2, 3]
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3]


def test_each_epoch_line_says_how_long_the_run_has_left(tiny_config, tmp_path, capsys):
    train(tiny_config, tmp_path / "run")
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("epoch ")]
    assert len(lines) == 2
    assert lines[0].startswith("epoch 1/2 | loss ") and re.search(r"\| about \d+ s left$", lines[0])
    assert "left" not in lines[1]  # the last epoch has none


def test_refuses_to_overwrite_a_finished_run(tiny_config, tmp_path):
    train(tiny_config, tmp_path / "run", quiet=True)
    before = (tmp_path / "run" / "model.safetensors").read_bytes()
    with pytest.raises(FileExistsError, match="--resume"):
        train(tiny_config, tmp_path / "run", quiet=True)
    assert (tmp_path / "run" / "model.safetensors").read_bytes() == before


def test_nan_loss_stops_with_advice(tiny_overrides, tmp_path):
    config = load_config("quickstart", overrides=[*tiny_overrides, "optim.lr=1e12", "optim.epochs=2"])
    with pytest.raises(TrainingDiverged, match="optim.lr"):
        train(config, tmp_path / "run", quiet=True)


def test_resume_without_checkpoint_is_clear(tiny_config, tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint.pt"):
        train(tiny_config, tmp_path / "empty", resume=True, quiet=True)


def test_standard_training_learns_on_real_images(tiny_overrides, tmp_path):
    """A sanity check that the loop optimizes: clean accuracy far above chance after a few epochs."""
    config = load_config("quickstart", overrides=[
        *tiny_overrides, "method.name=st", "method.lam=null", "model.width=16", "data.train_n=2000",
        "data.eval_n=500", "optim.epochs=4", "optim.lr=0.1"])
    result = train(config, tmp_path / "run", quiet=True)
    assert result.history[-1]["eval_clean_acc"] > 0.25  # chance is 0.10
    assert result.history[-1]["train_adv_acc"] is None
