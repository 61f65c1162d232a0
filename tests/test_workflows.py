"""The quickstart job end to end at a tiny size: both arms, table, report and chart."""

import json

from nofrost.evaluate.result import EvaluationResult
from nofrost.report import write_report
from nofrost.workflows import quickstart


def test_quickstart_trains_both_arms_and_reports(tiny_overrides, tmp_path):
    summary = quickstart(tmp_path / "qs", overrides=tiny_overrides, quiet=True)
    text = summary.table.text()
    assert "SAT" in text and "NoFrost" in text and "batch norm" in text and "none (NF)" in text
    assert summary.table.headers == ["method", "normalization", "clean %", "PGD-20 %", "train s"]
    for run, norm in (("sat-bn", "bn"), ("nofrost-nf", "none")):
        spec = json.loads((tmp_path / "qs" / run / "model.json").read_text())
        assert spec["name"] == "cifar_resnet10" and spec["kwargs"]["norm"] == norm
        evaluation = json.loads((tmp_path / "qs" / run / "eval.json").read_text())
        assert evaluation["n"] == 64 and evaluation["attack_params"]["pgd"]["steps"] == 20
    report = summary.report.read_text()
    assert "| SAT | batch norm |" in report and "quickstart.png" in report
    assert summary.chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # Running it again continues the finished runs instead of refusing or retraining.
    again = quickstart(tmp_path / "qs", overrides=tiny_overrides, quiet=True)
    assert again.table.rows == summary.table.rows


def test_quickstart_takes_any_attacks(tiny_overrides, tmp_path):
    """Attacks with options (and more than one) become the table's columns, by display name."""
    summary = quickstart(tmp_path / "qs", overrides=[*tiny_overrides, "eval.attacks=[pgd:steps=3,apgd-ce:steps=3]"],
                         quiet=True)
    assert summary.table.headers == ["method", "normalization", "clean %", "PGD-3 %", "APGD-CE-3 %", "train s"]
    assert all(len(row) == 6 for row in summary.table.rows)
    # The report reads the same labels from the runs' eval.json files.
    runs = [tmp_path / "qs" / "sat-bn", tmp_path / "qs" / "nofrost-nf"]
    (report,) = write_report(runs, tmp_path / "report.md")
    assert "| white-box: PGD-3 | white-box: APGD-CE-3 |" in report.read_text()
    for run, row in zip(runs, summary.table.rows):
        evaluation = EvaluationResult.load(run / "eval.json")
        assert f"{100 * evaluation.attacks['pgd:steps=3'].accuracy:.2f}" == row[3]
