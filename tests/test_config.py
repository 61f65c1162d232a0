"""Config: presets resolve, overrides apply, and every bad key/type/value names itself."""

import pytest

from nofrost.config import Config, ConfigError, config_from_dict, list_presets, load_config, parse_override


def test_every_preset_loads_and_validates():
    names = list_presets()
    for expected in ["quickstart", "cifar10-sat", "cifar10-nofrost", "imagenet-sat-r50", "imagenet-nofrost-r50",
                     "imagenet-sat-r26", "imagenet-nofrost-r26"]:
        assert expected in names
    for name in names:
        config = load_config(name)
        assert isinstance(config, Config)
        assert config.name == name


def test_imagenet_presets_follow_the_paper_recipe():
    for depth in (26, 50):
        sat, nofrost = load_config(f"imagenet-sat-r{depth}"), load_config(f"imagenet-nofrost-r{depth}")
        assert sat.model.name == f"resnet{depth}" and nofrost.model.name == f"nf_resnet{depth}"
        for c in (sat, nofrost):
            assert (c.optim.epochs, c.optim.batch_size, c.optim.lr, c.optim.weight_decay, c.optim.momentum) == (90, 256, 0.1, 5e-5, 0.9)
            assert c.attack.eps == pytest.approx(8 / 255) and c.attack.steps == 10
            assert c.method.name == "sat" and c.method.lam == 0.5
            assert (c.optim.label_smoothing, c.model.dropout, c.model.drop_path) == (0.1, 0.25, 0.1)


def test_cifar_pair_differs_only_in_normalization():
    sat, nofrost = load_config("cifar10-sat").to_dict(), load_config("cifar10-nofrost").to_dict()
    assert sat["model"].pop("norm") == "bn" and nofrost["model"].pop("norm") == "none"
    sat.pop("name"), nofrost.pop("name")
    assert sat == nofrost


def test_overrides_apply_with_types(tmp_path):
    config = load_config("quickstart", overrides=["optim.epochs=3", "attack.eps=4/255", "runtime.compile=true",
                                                  "eval.attacks=pgd,pgd-t", "model.width=null"])
    assert config.optim.epochs == 3
    assert config.attack.eps == pytest.approx(4 / 255)
    assert config.runtime.compile is True
    assert config.eval.attacks == ["pgd", "pgd-t"]
    assert config.model.width is None


def test_file_is_laid_over_preset_and_under_overrides(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("optim:\n  epochs: 7\n  lr: 0.05\n")
    config = load_config("quickstart", path, ["optim.lr=0.2"])
    assert config.optim.epochs == 7 and config.optim.lr == 0.2
    assert config.model.name == load_config("quickstart").model.name


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("optim.epoch=3", "unknown key 'optim.epoch'"),
        ("optimizer.lr=0.1", "unknown key 'optimizer'"),
        ("optim.epochs=three", "optim.epochs: must be an integer"),
        ("optim.lr=-1", "optim.lr: must be a positive number"),
        ("runtime.compile=maybe", "runtime.compile: must be true, false or 'auto'"),
        ("model.dropout=1.5", "model.dropout"),
        ("attack.eps=8", "did you mean 8/255"),
        ("attack.precision=fp16", "'fp32' or 'bf16'"),
        ("method.lam=2", "method.lam"),
        ("optim.epochs", "expected section.key=value"),
    ],
)
def test_bad_values_name_the_key(override, fragment):
    with pytest.raises(ConfigError, match=None) as info:
        load_config("quickstart", overrides=[override])
    assert fragment in str(info.value)


def test_unknown_preset_and_missing_file_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="unknown preset 'nope'; available: .*quickstart"):
        load_config("nope")
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(file=tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(file=bad)


def test_round_trip_through_dict():
    config = load_config("imagenet-nofrost-r50")
    assert config_from_dict(config.to_dict()) == config


def test_parse_override_keeps_fraction_strings():
    assert parse_override("attack.eps=8/255") == {"attack": {"eps": "8/255"}}
    assert parse_override("a.b.c=1") == {"a": {"b": {"c": 1}}}
