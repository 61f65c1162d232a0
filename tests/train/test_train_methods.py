"""Every method trains for real (tiny cifar10-mini runs from its preset) and writes a run dir;
Free AT's replays reach the trainer; an MBNAT run loads and interpolates."""

import json

import pytest
import torch
import yaml

from nofrost import load_model
from nofrost.config import load_config
from nofrost.data.deepaugment import CAE
from nofrost.models import FeatureMapTooSmallError
from nofrost.models.mbn import interpolated, mbn_layers
from nofrost.train import train
from nofrost.train.checkpoint import load_checkpoint

# Presets of the full experiments, shrunk to the shipped data and a tiny network.
SHRINK = ["data.name=cifar10-mini", "model.name=cifar_resnet10"]


@pytest.mark.parametrize("preset, extra", [
    ("cifar10-trades", []),
    ("cifar10-fat", []),
    ("cifar10-trades-fat", []),
    ("cifar10-mbnat", []),
    ("cifar10-sat-in", []),
    ("cifar10-sat", ["model.norm=gn"]),
    ("cifar10-fast-at", []),
    ("cifar10-free-at", ["method.replays=2"]),
    ("cifar10-nofrost-star", []),
    ("cifar10-combine", []),
    ("cifar10-tda", []),
    ("cifar10-deepaugment", []),
])
def test_each_method_trains_and_writes_a_run(preset, extra, tiny_overrides, tmp_path):
    config = load_config(preset, overrides=[*tiny_overrides, *SHRINK, *extra])
    result = train(config, tmp_path / "run", quiet=True)
    for name in ["config.yaml", "metrics.jsonl", "checkpoint.pt", "model.safetensors", "model.json"]:
        assert (tmp_path / "run" / name).is_file(), name
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == (1 if preset == "cifar10-free-at" else 2)  # Free AT: ceil(2 / m) epochs
    assert all(r["train_loss"] > 0 and torch.isfinite(torch.tensor(r["train_loss"])) for r in records)
    adversarial_only = preset in ("cifar10-fat", "cifar10-fast-at", "cifar10-free-at")
    assert (records[-1]["train_clean_acc"] is None) == adversarial_only
    clean_and_augmented_only = preset in ("cifar10-tda", "cifar10-deepaugment")
    assert (records[-1]["train_adv_acc"] is None) == clean_and_augmented_only
    loaded = load_model(tmp_path / "run")
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(loaded(x), result.model.eval()(x), atol=1e-5)


def test_mbnat_run_loads_and_interpolates(tiny_overrides, tmp_path):
    config = load_config("cifar10-mbnat", overrides=[*tiny_overrides, *SHRINK])
    train(config, tmp_path / "run", quiet=True)
    assert json.loads((tmp_path / "run" / "model.json").read_text())["kwargs"]["norm"] == "mbn"
    model = load_model(tmp_path / "run")
    layers = mbn_layers(model)
    assert len(layers) == 9
    # both paths were trained: their statistics moved away from the initial values and apart
    assert all(m.num_batches_tracked_c > 0 and m.num_batches_tracked_a > 0 for m in layers)
    assert not torch.allclose(layers[0].running_mean_c, layers[0].running_mean_a)
    x = torch.rand(8, 3, 32, 32)
    with torch.no_grad():
        outs = {g: interpolated(model, g)(x) for g in (0.0, 0.5, 1.0)}
        assert torch.equal(outs[1.0], model(x))  # a bare MBN model is its BN_a path
        assert torch.allclose(outs[0.5], 0.5 * outs[0.0] + 0.5 * outs[1.0], atol=1e-5)
        assert not torch.allclose(outs[0.0], outs[1.0])


def test_free_at_replays_each_minibatch_and_scales_the_epochs(tiny_overrides, tmp_path):
    config = load_config("cifar10-free-at", overrides=[*tiny_overrides, *SHRINK, "optim.epochs=5", "method.replays=2"])
    result = train(config, tmp_path / "run", quiet=True)
    assert [r["epoch"] for r in result.history] == [1, 2, 3]  # ceil(5 / 2)
    state = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    steps_per_epoch = 256 // 64
    assert state["scheduler"]["last_epoch"] == 3 * steps_per_epoch * 2  # one schedule step per replay
    assert result.history[-1]["lr"] == pytest.approx(0.0, abs=1e-12)  # the cosine ends at the last replay
    delta = state["method"]["delta"]
    assert delta.shape == (64, 3, 32, 32) and delta.abs().max() <= config.attack.eps + 1e-7 and delta.abs().max() > 0


def test_free_at_resume_is_exact(tiny_overrides, tmp_path, interrupted_then_resumed):
    config = load_config("cifar10-free-at", overrides=[*tiny_overrides, *SHRINK, "optim.epochs=4", "method.replays=2"])
    full = train(config, tmp_path / "full", quiet=True)
    resumed = interrupted_then_resumed(config, tmp_path / "cut", after_epochs=1)
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("preset, with_cae_weights", [
    ("cifar10-combine", False),
    ("cifar10-nofrost-star", True),
])
def test_augmentation_methods_resume_exactly_and_record_the_variant(
    preset, with_cae_weights, tiny_overrides, tmp_path, interrupted_then_resumed, capsys
):
    extra = ["data.train_n=96", "optim.batch_size=32"]
    if with_cae_weights:  # weights of the published architecture, made here
        torch.manual_seed(0)
        torch.save(CAE().state_dict(), tmp_path / "cae.pt")
        extra.append(f"method.cae_weights={tmp_path / 'cae.pt'}")
    config = load_config(preset, overrides=[*tiny_overrides, *SHRINK, "optim.epochs=3", *extra])
    full = train(config, tmp_path / "full")
    variant = "cae" if with_cae_weights else "noise2net"
    assert f"DeepAugment variant: {variant}" in capsys.readouterr().err
    assert yaml.safe_load((tmp_path / "full" / "config.yaml").read_text())["method"]["deepaugment"] == variant
    resumed = interrupted_then_resumed(config, tmp_path / "cut", after_epochs=2)
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name


def test_instance_norm_fails_clearly_at_1x1_feature_maps(tiny_overrides, tmp_path):
    # an ImageNet ResNet on 32x32 images downsamples to 1x1, where instance norm is undefined
    config = load_config("cifar10-sat-in", overrides=[*tiny_overrides, "data.name=cifar10-mini", "model.name=resnet26",
                                                       "model.width=null"])
    with pytest.raises(FeatureMapTooSmallError, match=r"instance norm layer 'net\.layer4.*\(1, 1\).*64x64"):
        train(config, tmp_path / "run", quiet=True)
