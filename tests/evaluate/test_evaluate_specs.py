"""Attack specs and suites as `evaluate` and the CLI see them, and the paper-layout table."""

import pytest

from nofrost.evaluate import AttackSpec, parse_attack_specs
from nofrost.evaluate.result import EvaluationResult
from nofrost.report.tables import evaluation_table


def test_paper_suite_expands_to_the_papers_columns():
    specs = parse_attack_specs("clean,paper")
    assert [s.name for s in specs] == ["pgd", "apgd-ce", "apgd-dlr", "mifgsm", "cw-linf", "rays", "square", "autoattack"]
    assert specs[0].resolved_kwargs() == {"steps": 20}
    # The reference test.py's MIA step (PGD's rule, 0.5/255) and 20-step AutoAttack (Sec. 4.1).
    assert specs[3].kwargs == {"steps": 20, "step_size": "pgd"}
    assert specs[-1].kwargs == {"version": "fast", "steps": 20}


def test_spec_values_may_be_fractions():
    (spec,) = parse_attack_specs("pgd:steps=50:step_size=1/255:restarts=2")
    assert spec.kwargs == {"steps": 50, "step_size": 1 / 255, "restarts": 2}


def test_strong_is_standard_autoattack_and_items_mix():
    specs = parse_attack_specs(["strong", "pgd:steps=50:restarts=2", AttackSpec("pgd-t")])
    assert [(s.name, s.kwargs) for s in specs] == [
        ("autoattack", {"version": "standard"}), ("pgd", {"steps": 50, "restarts": 2}), ("pgd-t", {})]
    assert specs[1].label == "pgd:steps=50:restarts=2"


@pytest.mark.parametrize("text, fragment", [("nope", "unknown attack 'nope'"), ("pgd:steps", "expected key=value")])
def test_bad_specs_are_clear(text, fragment):
    with pytest.raises(ValueError, match=fragment) as info:
        parse_attack_specs(text)
    if "unknown" in fragment:
        assert "paper" in str(info.value) and "strong" in str(info.value)


def test_table_groups_columns_as_the_paper():
    result = EvaluationResult.from_json({"model": "m", "n": 10, "clean": 0.5, "worst_case": 0.1, "attacks": {
        "square:queries=400": 0.4, "autoattack:version=fast": 0.15, "pgd": 0.2, "mifgsm:steps=20": 0.3}})
    table = evaluation_table([result])
    assert table.headers == ["model", "n", "clean", "PGD-20", "MIA", "Square-400", "AA-fast", "worst-case"]
    assert table.rows[0] == ["m", "10", "50.00", "20.00", "30.00", "40.00", "15.00", "10.00"]
    text = table.text().splitlines()
    assert "white-box" in text[0] and "black-box" in text[0] and text[0].index("white-box") < text[0].index("black-box")
