"""Attack suites (``paper``, ``strong``) and the paper-layout column names."""

from __future__ import annotations

import inspect

import pytest

from nofrost.attacks import get, list_attacks
from nofrost.evaluate.robustness import AttackSpec, parse_attack_specs
from nofrost.evaluate.suites import (
    SUITES,
    column_group,
    display_name,
    expand_suites,
    list_suites,
    paper_columns,
)

PAPER = [
    "pgd:steps=20",
    "apgd-ce:steps=20",
    "apgd-dlr:steps=20",
    "mifgsm:steps=20:step_size=pgd",
    "cw-linf:steps=20",
    "rays:queries=400",
    "square:queries=400",
    "autoattack:version=fast:steps=20",
]


def test_suites_expand_in_order():
    assert list_suites() == ["paper", "strong"]
    assert expand_suites("paper") == PAPER
    assert expand_suites("clean,paper") == ["clean", *PAPER]
    assert expand_suites("strong,pgd") == ["autoattack:version=standard", "pgd"]
    assert expand_suites(["strong", " pgd:steps=50 ", ""]) == [
        "autoattack:version=standard",
        "pgd:steps=50",
    ]
    # Exact duplicates are dropped, other items pass through untouched.
    assert expand_suites("paper,pgd:steps=20,pgd") == [*PAPER, "pgd"]
    assert expand_suites("") == []


def test_expand_suites_rejects_non_strings():
    with pytest.raises(ValueError, match="string"):
        expand_suites(42)
    with pytest.raises(ValueError, match="strings"):
        expand_suites(["pgd", 3])


def test_column_groups_and_display_names_of_the_paper_suite():
    groups = [column_group(spec) for spec in PAPER]
    assert groups == ["white-box"] * 5 + ["black-box"] * 2 + ["AutoAttack"]
    names = [display_name(spec) for spec in PAPER]
    assert names == ["PGD-20", "APGD-CE", "APGD-DLR", "MIA", "CW∞", "RayS", "Square-400", "AA-fast"]
    assert display_name("autoattack:version=standard") == "AA"
    assert [display_name(s) for s in expand_suites("strong")] == ["AA"]
    assert column_group("clean") == "clean" and display_name("clean") == "clean"


def test_display_names_show_non_paper_budgets():
    assert display_name("pgd") == "PGD-20"  # evaluation default for PGD
    assert display_name("pgd:steps=50:restarts=3") == "PGD-50×3"
    assert display_name("mifgsm:steps=50") == "MIA-50"
    assert display_name("mifgsm") == "MIA"  # its default is the paper's 20
    assert display_name("square") == "Square-5000"
    assert display_name("rays:queries=1000") == "RayS-1000"
    assert display_name(AttackSpec("cw-linf", {"steps": 20})) == "CW∞"
    assert column_group(AttackSpec("square", {})) == "black-box"
    assert display_name("bim") == "BIM-20"
    assert display_name("unknown-thing:x=1") == "unknown-thing:x=1"
    assert column_group("unknown-thing") == "white-box"


def test_paper_columns_order():
    labels = ["square:queries=400", "autoattack:version=fast", "pgd", "rays", "mifgsm"]
    assert paper_columns(labels) == [
        ("white-box", "PGD-20", "pgd"),
        ("white-box", "MIA", "mifgsm"),
        ("black-box", "Square-400", "square:queries=400"),
        ("black-box", "RayS-10000", "rays"),
        ("AutoAttack", "AA-fast", "autoattack:version=fast"),
    ]


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_suite_specs_fit_the_registered_attacks(suite):
    """Specs of attacks registered here parse and name real parameters of the attack."""
    known = set(list_attacks())
    for spec in expand_suites(suite):
        name = spec.split(":")[0]
        if name not in known:
            continue  # provided by another module (apgd, autoattack): checked once it exists
        (parsed,) = parse_attack_specs(spec)
        parameters = inspect.signature(get(name)).parameters
        assert set(parsed.kwargs) <= set(parameters), spec


def test_no_attack_reports_more_than_clean_accuracy():
    """Each new attack, run on *all* images (also the misclassified ones), never raises the
    accuracy above the clean accuracy; evaluate() lays the result out in the paper's groups."""
    from pathlib import Path

    import torch

    import nofrost
    from nofrost.data import load_dataset, stratified_subset
    from nofrost.evaluate import evaluate

    model = nofrost.load_model(Path(__file__).resolve().parents[1] / "assets" / "cifar_resnet10_sat_bn")
    data = stratified_subset(load_dataset("cifar10-mini", "test"), 60)
    x, y = data.images.float() / 255, data.targets

    def accuracy(images):
        with torch.no_grad():
            return float((model(images).argmax(1) == y).float().mean())

    clean = accuracy(x)
    budgets = {"bim": {"steps": 5}, "mifgsm": {"steps": 5}, "cw-linf": {"steps": 5},
               "square": {"queries": 50}, "rays": {"queries": 50}}  # fmt: skip
    for name, kwargs in budgets.items():
        adv = accuracy(get(name)(model, x, y, 8 / 255, generator=torch.Generator().manual_seed(0), **kwargs))
        print(f"{name}: clean {clean:.3f} -> {adv:.3f}")
        assert adv <= clean, name

    specs = [f"{name}:" + ":".join(f"{k}={v}" for k, v in kw.items()) for name, kw in budgets.items()]
    result = evaluate(model, data, attacks=["clean", *specs], eps=8 / 255)
    assert all(acc <= result["clean"] for acc in result["attacks"].values())
    assert result["worst_case"] <= min(result["attacks"].values())
    layout = paper_columns(list(result["attacks"]))
    assert [group for group, _, _ in layout] == ["white-box"] * 3 + ["black-box"] * 2
    assert [name for _, name, _ in layout] == ["BIM-5", "MIA-5", "CW∞-5", "Square-50", "RayS-50"]


def test_groups_and_headers_come_from_the_attacks_registration(monkeypatch):
    from nofrost.attacks import ATTACKS, KINDS, attack_info, register_attack
    from nofrost.attacks import _registry

    assert all(attack_info(name).kind in KINDS for name in list_attacks())
    assert {n for n in list_attacks() if attack_info(n).kind == "black-box"} == {"rays", "square"}
    assert attack_info("autoattack").kind == "ensemble"
    # A new black-box attack is grouped as one (and so checked by the audit) with no table to edit.
    monkeypatch.setattr(ATTACKS, "_entries", dict(ATTACKS._entries))
    monkeypatch.setattr(_registry, "ATTACK_INFO", dict(_registry.ATTACK_INFO))

    @register_attack("test-boundary", kind="black-box", display="Boundary", budget="queries")
    def boundary(model, x, y, eps, *, queries: int = 1000):
        return x

    assert column_group("test-boundary:queries=50") == "black-box"
    assert display_name("test-boundary:queries=50") == "Boundary-50" and display_name("test-boundary") == "Boundary-1000"
    with pytest.raises(ValueError, match="kind must be one of white-box, black-box, ensemble"):
        register_attack("test-bad", kind="grey-box")
