"""The typed evaluation result: JSON round trip, earlier files, per-example values, bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

import nofrost
from nofrost.data import load_dataset
from nofrost.evaluate import evaluate
from nofrost.evaluate.result import AuditCheck, EvaluationResult, PerExample, per_example_path

ASSETS = Path(__file__).resolve().parents[1] / "assets"
EARLIER = sorted((ASSETS / "results").glob("eval_*.json"))


@pytest.fixture(scope="module")
def result():
    model = nofrost.load_model(ASSETS / "cifar_resnet10_sat_bn")
    data = load_dataset("cifar10-mini", "test")
    return evaluate(model, data, attacks="pgd:steps=3,square:queries=30", n=40, model_name="sat",
                    dataset_name="cifar10-mini", split="test")


def test_fields_agree_with_the_per_example_masks(result):
    per = result.per_example
    assert len(per.clean) == result.n == 40
    assert result.clean == pytest.approx(float(per.clean.float().mean()))
    assert list(result.attacks) == ["pgd:steps=3", "square:queries=30"]
    pgd = result.attacks["pgd:steps=3"]
    assert (pgd.name, pgd.display, pgd.group) == ("pgd", "PGD-3", "white-box")
    assert pgd.params == {"steps": 3}
    for label, attack in result.attacks.items():
        assert attack.accuracy == pytest.approx(float(per.robust[label].float().mean()))
        assert not bool((per.robust[label] & ~per.clean).any())  # robust only if clean-correct
    worst = per.clean & per.robust["pgd:steps=3"] & per.robust["square:queries=30"]
    assert result.worst_case == pytest.approx(float(worst.float().mean()))
    assert all(isinstance(check, AuditCheck) for check in result.audit) and result.audit


def test_json_round_trip_and_the_design_contract(result):
    data = result.to_json()
    contract = {"model", "dataset", "split", "n", "eps", "clean", "attacks", "worst_case", "audit", "seconds"}
    assert contract <= set(data) and "metrics" not in data  # no metric measured: no key
    assert json.loads(json.dumps(data)) == data
    again = EvaluationResult.from_json(json.loads(json.dumps(data)))
    assert again.to_json() == data
    assert again.attacks["pgd:steps=3"].params == {"steps": 3}
    # Scripts written against the dictionary still read it.
    assert result["clean"] == result.clean and result["attacks"]["pgd:steps=3"] == result.attacks["pgd:steps=3"].accuracy
    assert dict(result) == data


@pytest.mark.parametrize("path", EARLIER, ids=lambda p: p.stem)
def test_results_written_by_earlier_versions_load(path):
    data = json.loads(path.read_text())
    loaded = EvaluationResult.load(path)
    assert loaded.clean == data["clean"] and loaded.accuracies == data["attacks"]
    assert loaded.norm == data.get("norm", "linf") == "linf"
    assert [c.to_json() for c in loaded.audit] == data["audit"]
    assert loaded.attacks["pgd:steps=5"].display == "PGD-5"
    assert loaded.to_json() == {"norm": "linf", **data}


def test_unknown_keys_survive_a_round_trip():
    """A later version's extension (e.g. distribution shift) is kept, not dropped."""
    data = {"clean": 0.5, "attacks": {}, "corruptions": {"fog": {"1": 0.4, "mean": 0.4}}}
    assert EvaluationResult.from_json(data).to_json()["corruptions"] == data["corruptions"]


def test_per_example_values_are_saved_beside_the_json(tmp_path):
    values = torch.tensor([0.5, -0.25, 0.125])
    result = EvaluationResult(n=3, clean=2 / 3, metrics={"margin": float(values.mean())},
                              per_example=PerExample(torch.tensor([True, False, True]),
                                                     {"pgd": torch.tensor([True, False, False])},
                                                     {"margin": values}))
    path = result.save(tmp_path / "eval.json")
    assert per_example_path(path) == tmp_path / "eval.npz" and (tmp_path / "eval.npz").is_file()
    loaded = EvaluationResult.load(path)
    assert loaded.metrics == {"margin": pytest.approx(0.125)}
    assert torch.equal(loaded.per_example.metrics["margin"], values)
    assert torch.equal(loaded.per_example.robust["pgd"], torch.tensor([True, False, False]))
    # Without metrics nothing is written beside it.
    EvaluationResult(n=0, clean=math.nan).save(tmp_path / "other.json")
    assert not (tmp_path / "other.npz").exists()


@pytest.mark.parametrize("content, message", [
    ('{"model": "x"}', "not a nofrost evaluation result"),
    ("[1, 2]", "not a nofrost evaluation result"),
    ("not json", "is not a JSON evaluation result"),
    ('{"clean": "high", "attacks": {}}', "malformed"),
    ('{"clean": 0.5, "attacks": [1]}', "malformed"),
])
def test_bad_files_raise_one_clear_error(tmp_path, content, message):
    path = tmp_path / "eval.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        EvaluationResult.load(path)


def test_a_missing_file_says_where(tmp_path):
    with pytest.raises(FileNotFoundError, match="no evaluation result"):
        EvaluationResult.load(tmp_path / "nope.json")
