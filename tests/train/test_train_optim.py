"""Optimizer groups, the warm-up + cosine schedule, and adaptive gradient clipping."""

import math

import pytest
import torch

from nofrost.config import ConfigError, OptimConfig, load_config
from nofrost.models import create_model
from nofrost.train import train
from nofrost.train.optim import build_optimizer, build_schedule, head_excluded_parameters


# (model, kwargs, conv + linear weights, biases + gains + norm affines), counted by hand:
# nf_resnet26 has 29 Scaled-WS convs, each with a weight, a bias and a (C, 1, 1, 1) gain, and
# an fc; resnet26 has 29 convs without bias, 29 BNs with weight and bias, and an fc.
# cifar_resnet10 has 12 convs (stem, 4 x conv1/conv2, 3 transition shortcuts) and an fc; NF:
# a gain and a bias on each conv (the stem too, as timm's); BN: 9 norms (4 x 2 in the blocks, 1 final).
ROLE_COUNTS = [
    ("nf_resnet26", {}, 29 + 1, 29 + 29 + 1),
    ("resnet26", {}, 29 + 1, 29 * 2 + 1),
    ("cifar_resnet10", {"norm": "none", "width": 8}, 12 + 1, 12 + 12 + 1),
    ("cifar_resnet10", {"norm": "bn", "width": 8}, 12 + 1, 9 * 2 + 1),
    ("cifar_resnet10", {"norm": "mbn", "width": 8}, 12 + 1, 9 * 2 + 1),
]


@pytest.mark.parametrize("name, kwargs, weights, others", ROLE_COUNTS)
def test_weight_decay_groups_by_role_for_every_kind_of_model(name, kwargs, weights, others):
    model = create_model(name, 10, **kwargs)
    total = len(list(model.parameters()))
    assert weights + others == total
    decayed, exempt = build_optimizer(model, OptimConfig(weight_decay=5e-4, weight_decay_on="weights")).param_groups
    assert (len(decayed["params"]), len(exempt["params"])) == (weights, others)
    assert decayed["weight_decay"] == 5e-4 and exempt["weight_decay"] == 0
    assert decayed["nesterov"] and decayed["momentum"] == 0.9
    # The Scaled-WS gains are 4-D, like the weights, and still exempt: grouping is not by shape.
    gains = [p for n, p in model.named_parameters() if n.endswith(".gain")]
    assert all(not any(g is p for p in decayed["params"]) for g in gains)
    everything, nothing = build_optimizer(model, OptimConfig(weight_decay=5e-4)).param_groups
    assert (len(everything["params"]), len(nothing["params"])) == (total, 0)  # the reference code's choice


def test_paper_presets_decay_every_parameter_as_the_reference_code():
    for preset in ("imagenet-nofrost-r50", "imagenet-sat-r50", "imagenet-nofrost-r26", "cifar10-nofrost", "quickstart"):
        assert load_config(preset).optim.weight_decay_on == "all", preset
    with pytest.raises(ConfigError, match="weight_decay_on"):
        load_config("quickstart", overrides=["optim.weight_decay_on=biases"])


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
