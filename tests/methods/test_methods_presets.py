"""The method presets follow the papers' settings; the new config fields validate clearly."""

import pytest

from nofrost.config import ConfigError, list_presets, load_config
from nofrost.evaluate import parse_attack_specs
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


def test_paper_table_presets():
    # Table 6: standard training of ResNet-50 and NF-ResNet-50 with the paper's recipe.
    for preset, model, base in (("imagenet-st-r50", "resnet50", "imagenet-sat-r50"),
                                ("imagenet-st-nf-r50", "nf_resnet50", "imagenet-nofrost-r50")):
        c, recipe = load_config(preset), load_config(base)
        assert (c.method.name, c.method.lam, c.model.name) == ("st", 0.0, model)
        assert c.optim == recipe.optim and c.data == recipe.data
    # Table 7: Fast AT, Free AT (m = 4 on ImageNet) and NoFrost at eps 2/255 and 4/255, PGD-10/50.
    assert load_config("imagenet-free-at-r50").method.replays == 4
    assert load_config("imagenet-fast-at-r50").method.name == "fast-at"
    for method in ("fast-at", "free-at", "nofrost"):
        for eps in (2, 4):
            c = load_config(f"imagenet-{method}-r50-eps{eps}")
            assert c.attack.eps == pytest.approx(eps / 255)
            assert c.method == load_config(f"imagenet-{method}-r50").method
            specs = parse_attack_specs(c.eval.attacks)
            assert [(s.name, s.kwargs["steps"]) for s in specs] == [("pgd", 10), ("pgd", 50)]
            assert all(s.kwargs["step_size"] == pytest.approx(1 / 255) for s in specs)
            build_method(c.method, c.attack)
    # CIFAR-10 ST, with and without batch norm.
    assert load_config("cifar10-st").model.norm == "bn" and load_config("cifar10-st-nf").model.norm == "none"
    assert {load_config(p).method.name for p in ("cifar10-st", "cifar10-st-nf")} == {"st"}


def test_presets_extend_presets(tmp_path, monkeypatch):
    from nofrost import config as config_module

    (tmp_path / "presets").mkdir()
    files = {
        "base": "optim:\n  epochs: 7\n  lr: 0.2\nmethod:\n  name: sat\n  lam: 0.5\n",
        "child": "extends: base\noptim:\n  epochs: 3\n",
        "grandchild": "extends: child\nmethod:\n  name: st\n  lam: 0.0\n",
        "loop-a": "extends: loop-b\n",
        "loop-b": "extends: loop-a\n",
        "orphan": "extends: missing\n",
    }
    for name, text in files.items():
        (tmp_path / "presets" / f"{name}.yaml").write_text(text)
    monkeypatch.setattr(config_module.resources, "files", lambda package: tmp_path)
    c = load_config("grandchild")
    assert (c.name, c.optim.epochs, c.optim.lr, c.method.name, c.method.lam) == ("grandchild", 3, 0.2, "st", 0.0)
    with pytest.raises(ConfigError, match="cycle: loop-a -> loop-b -> loop-a"):
        load_config("loop-a")
    with pytest.raises(ConfigError, match="unknown preset 'missing' \\(extended by preset 'orphan'\\)"):
        load_config("orphan")


@pytest.mark.parametrize("method, depth", [("sat", 26), ("sat", 50), ("nofrost", 26), ("nofrost", 50)])
def test_parity_presets_train_and_evaluate_as_the_reference_code(method, depth):
    c, base = load_config(f"imagenet-{method}-r{depth}-parity"), load_config(f"imagenet-{method}-r{depth}")
    assert c.model == base.model and c.method == base.method and c.optim == base.optim and c.attack == base.attack
    assert c.optim.weight_decay_on == "all" and c.runtime.bf16 is False and c.runtime.broadcast_buffers is False
    # BN over 32 images (8 GPUs x 32 in PGDAT.py); an NF model has no BN to group
    assert c.runtime.bn_group_size == (32 if method == "sat" else None)
    assert (c.eval.select, c.eval.select_on, c.eval.select_n, c.eval.select_steps) == ("best", "eval", 50000, 5)
    assert c.eval.attacks == ["paper"] and c.eval.n == 50000


# NoFrost* and its baselines (Sec. 4.4): the recipe of NoFrost (NF) or SAT (BN), another method.
AUGMENTATION_PRESETS = {"nofrost-star": "nofrost", "deepaugment": "sat", "tda": "sat", "combine": "sat"}


@pytest.mark.parametrize("suffix", sorted(AUGMENTATION_PRESETS))
def test_augmentation_presets_change_only_the_method(suffix):
    from nofrost.config import MethodConfig

    base = AUGMENTATION_PRESETS[suffix]
    pairs = [(f"cifar10-{suffix}", f"cifar10-{base}")]
    pairs += [(f"imagenet-{suffix}-r{depth}", f"imagenet-{base}-r{depth}") for depth in (26, 50)]
    for name, base_name in pairs:
        config, reference = load_config(name), load_config(base_name)
        assert config.method == MethodConfig(name=suffix)
        ours, theirs = config.to_dict(), reference.to_dict()
        for d in (ours, theirs):
            d.pop("name"), d.pop("method")
        assert ours == theirs
        normalizer_free = config.model.norm == "none" or config.model.name.startswith("nf_")
        assert normalizer_free == (suffix == "nofrost-star")  # Combine and the baselines: BN networks
        method = build_method(config.method, config.attack)
        assert method.views == (() if suffix == "deepaugment" else ("tda",))
