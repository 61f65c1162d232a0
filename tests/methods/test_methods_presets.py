"""The method presets follow the papers' settings; the new config fields validate clearly."""

import pytest

from nofrost.config import ConfigError, list_presets, load_config
from nofrost.methods import build_method

METHOD_PRESETS = {
    # preset suffix: (method, norm, beta, tau, replays, training attack steps)
    "trades": ("trades", None, 1.0, None, None, 10),
    "fat": ("fat", None, None, 1, None, 10),
    "trades-fat": ("trades-fat", None, 1.0, 1, None, 10),
    "mbnat": ("mbnat", "mbn", None, None, None, 10),
    "sat-in": ("sat", "in", None, None, None, 10),
}


@pytest.mark.parametrize("suffix", sorted(METHOD_PRESETS))
def test_imagenet_method_presets_follow_the_paper(suffix):
    name, norm, beta, tau, replays, steps = METHOD_PRESETS[suffix]
    for depth in (26, 50):
        c = load_config(f"imagenet-{suffix}-r{depth}")
        sat = load_config(f"imagenet-sat-r{depth}")
        assert c.method.name == name and c.model.name == f"resnet{depth}" and c.model.norm == norm
        assert (c.method.beta, c.method.tau, c.method.replays) == (beta, tau, replays)
        assert c.optim == sat.optim and c.data == sat.data and c.runtime == sat.runtime and c.eval == sat.eval
        assert c.optim.epochs == 90 and c.attack.eps == pytest.approx(8 / 255) and c.attack.steps == steps
        assert (c.model.dropout, c.model.drop_path) == (sat.model.dropout, sat.model.drop_path)
        build_method(c.method, c.attack)


@pytest.mark.parametrize("suffix", sorted(METHOD_PRESETS) + ["fast-at", "free-at"])
def test_cifar_method_presets_differ_from_sat_only_in_method_and_norm(suffix):
    c, sat = load_config(f"cifar10-{suffix}").to_dict(), load_config("cifar10-sat").to_dict()
    for d in (c, sat):
        d.pop("name"), d.pop("method"), d["model"].pop("norm"), d["attack"].pop("steps")
    assert c == sat
    config = load_config(f"cifar10-{suffix}")
    build_method(config.method, config.attack)
    assert config.attack.eps == pytest.approx(8 / 255)
    if suffix in METHOD_PRESETS:
        name, norm, beta, tau, _, steps = METHOD_PRESETS[suffix]
        assert (config.method.name, config.model.norm or "bn", config.attack.steps) == (name, norm or "bn", steps)
        assert (config.method.beta, config.method.tau) == (beta, tau)
    else:
        assert config.method.name == suffix and config.attack.steps == 1
    if suffix == "free-at":
        assert config.method.replays == 8


def test_all_presets_listed():
    names = set(list_presets())
    for suffix in ["trades", "fat", "trades-fat", "mbnat", "sat-in", "fast-at", "free-at"]:
        assert f"cifar10-{suffix}" in names
    for suffix in METHOD_PRESETS:
        assert {f"imagenet-{suffix}-r50", f"imagenet-{suffix}-r26"} <= names


@pytest.mark.parametrize("override, message", [
    ("method.beta=-1", "method.beta: must be a finite number >= 0"),
    ("method.beta=.inf", "method.beta: must be a finite number >= 0"),
    ("method.tau=-1", "method.tau: must be an integer >= 0"),
    ("method.tau=1.5", "method.tau: must be an integer"),
    ("method.replays=0", "method.replays: must be an integer >= 1"),
    ("method.gamma=1", "unknown key 'method.gamma'"),
])
def test_bad_method_fields_are_named(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("quickstart", overrides=[override])


def test_method_fields_parse_from_overrides():
    c = load_config("quickstart", overrides=["method.name=trades-fat", "method.beta=6", "method.tau=0"])
    assert (c.method.beta, c.method.tau) == (6.0, 0)
    assert load_config("quickstart", overrides=["method.name=free-at", "method.replays=4"]).method.replays == 4
