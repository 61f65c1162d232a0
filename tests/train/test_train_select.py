"""Checkpoint selection (eval.select: best): the reference code's best_RA.pth, chosen on held-out
training images by default, with both checkpoints kept, evaluated and reported."""

import json

import pytest
import torch

from nofrost import load_model
from nofrost.config import ConfigError, load_config
from nofrost.data import load_dataset
from nofrost.report import build_report, load_sources
from nofrost.train import train
from nofrost.train.checkpoint import load_checkpoint
from nofrost.train.loop import _training_and_selection_sets
from nofrost.workflows import evaluate_run

BEST = ["eval.select=best", "eval.select_n=64", "eval.select_every=1", "eval.n=32"]


def test_the_reference_schedule_checks_every_tenth_epoch_and_the_last_tenth():
    config = load_config("imagenet-nofrost-r50", overrides=["eval.select=best"]).eval
    assert [e for e in range(90) if config.selects_at(e, 90)] == [*range(0, 90, 10), *range(81, 90)]
    assert not any(load_config("imagenet-nofrost-r50").eval.selects_at(e, 90) for e in range(90))  # select: last


def test_held_out_images_are_not_trained_on(tiny_overrides):
    config = load_config("quickstart", overrides=[*tiny_overrides, *BEST])
    train_set, select_set = _training_and_selection_sets(config, None)
    assert (len(train_set), len(select_set)) == (256 - 64, 64)
    trained = {bytes(img.numpy()) for img in train_set.images}
    assert not any(bytes(img.numpy()) in trained for img in select_set.images)
    per_class = torch.bincount(select_set.targets, minlength=10)
    assert int(per_class.max()) - int(per_class.min()) <= 1  # class-balanced
    last, none = _training_and_selection_sets(load_config("quickstart", overrides=tiny_overrides), None)
    assert none is None and len(last) == 256


def test_selecting_on_test_data_warns():
    config = load_config("quickstart", overrides=["data.train_n=256", *BEST, "eval.select_on=eval"])
    test = load_dataset("cifar10-mini", "test")
    with pytest.warns(UserWarning, match="selected on test data"):
        _, select_set = _training_and_selection_sets(config, test)
    assert len(select_set) == 64
    test_images = {bytes(img.numpy()) for img in test.images}
    assert all(bytes(img.numpy()) in test_images for img in select_set.images)  # from the split given
    with pytest.raises(ConfigError, match="eval.select_on"):
        load_config("quickstart", overrides=["eval.select_on=val"])
    with pytest.raises(ValueError, match="hold out all 256 training images"):
        _training_and_selection_sets(load_config("quickstart", overrides=["data.train_n=256", "eval.select=best",
                                                                         "eval.select_n=256"]), None)


def test_best_checkpoint_is_kept_evaluated_and_reported(tiny_overrides, tmp_path):
    config = load_config("quickstart", overrides=[*tiny_overrides, *BEST])
    run = tmp_path / "run"
    train(config, run, quiet=True)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    accs = [r["select_robust_acc"] for r in records]
    best = json.loads((run / "best" / "best.json").read_text())
    assert best["epoch"] == max(range(len(accs)), key=lambda i: (accs[i], i)) + 1  # later ties win
    assert best["select_robust_acc"] == max(accs) and best["select_on"] == "holdout" and best["select_n"] == 64
    assert load_checkpoint(run / "checkpoint.pt")["best"] == best  # --resume keeps it
    load_model(run / "best")  # a model directory of its own

    result = evaluate_run(run, config)
    assert (run / "eval.json").is_file() and (run / "best" / "eval.json").is_file()
    assert result == json.loads((run / "best" / "eval.json").read_text())  # the selected one
    robustness = build_report(load_sources([run])).sections[1].blocks[1].table  # both checkpoints, labelled
    assert [row[0] for row in robustness.rows] == ["SAT w/ BN (run)", f"SAT w/ BN (run, best: epoch {best['epoch']} on holdout)"]
