"""Optimizer groups, the warm-up + cosine schedule, and adaptive gradient clipping."""

import math

import pytest
import torch

from nofrost.config import OptimConfig, load_config
from nofrost.models import create_model
from nofrost.train import train
from nofrost.train.optim import build_optimizer, build_schedule, head_excluded_parameters


def test_no_weight_decay_on_gains_and_biases():
    model = create_model("cifar_resnet10", 10, norm="none", width=8)
    decay, no_decay = build_optimizer(model, OptimConfig(weight_decay=5e-4)).param_groups
    assert decay["weight_decay"] == 5e-4 and no_decay["weight_decay"] == 0
    assert all(p.ndim > 1 for p in decay["params"]) and all(p.ndim <= 1 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))
    assert decay["nesterov"] and decay["momentum"] == 0.9


def test_warmup_then_cosine_to_zero():
    model = torch.nn.Linear(2, 2)
    config = OptimConfig(epochs=4, lr=0.1, warmup_epochs=1)
    optimizer = build_optimizer(model, config)
    schedule = build_schedule(optimizer, config, steps_per_epoch=10)
    lrs = []
    for _ in range(40):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert lrs[0] == pytest.approx(0.01) and lrs[9] == pytest.approx(0.1)  # linear warm-up over epoch 1
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))  # then monotone decay
    assert lrs[25] == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 15 / 30)))
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_agc_skips_the_classifier_head():
    model = create_model("cifar_resnet10", 10, norm="none", width=8)
    clipped = {id(p) for p in head_excluded_parameters(model)}
    head = model.net.get_classifier()
    assert all(id(p) not in clipped for p in head.parameters())
    assert len(clipped) == len(list(model.parameters())) - len(list(head.parameters()))


def test_training_with_agc_and_warmup_runs_and_clips(tiny_overrides, tmp_path, monkeypatch):
    from nofrost.train import loop

    calls = []
    real = loop.adaptive_clip_grad

    def spy(parameters, clip_factor):
        calls.append(clip_factor)
        return real(parameters, clip_factor=clip_factor)

    monkeypatch.setattr(loop, "adaptive_clip_grad", spy)
    config = load_config("quickstart", overrides=[*tiny_overrides, "model.norm=none", "optim.agc_clip=0.01", "optim.warmup_epochs=1"])
    result = train(config, tmp_path / "run", quiet=True)
    assert calls and set(calls) == {0.01}
    assert len(calls) == config.optim.epochs * (256 // 64)
    assert all(math.isfinite(r["train_loss"]) for r in result.history)
