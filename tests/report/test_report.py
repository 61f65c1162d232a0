"""`nofrost report`: one page (HTML + Markdown) from real tiny runs, sweeps, ε curves, results."""

from __future__ import annotations

import base64
import re
import statistics

import pytest

from nofrost.cli import main
from nofrost.evaluate.result import AuditCheck, EvaluationResult
from nofrost.evaluate.sweep_result import SweepPoint, SweepResult, SweepRun
from nofrost.report import Report, Table, build_report, load_sources, write_report
from nofrost.report.document import Figure


def test_rows_say_what_each_run_is_and_the_scale(runs, tmp_path):
    report = build_report(load_sources([runs["sat-bn"], runs["nofrost-nf"]]))
    markdown = report.markdown("figures")
    assert "| sat-bn | SAT w/ BN | cifar_resnet10 | BN | cifar10-mini, 256 images, 2 epochs | 0 |" in markdown
    assert "| nofrost-nf | NoFrost | cifar_resnet10 | NF |" in markdown
    assert "| NoFrost (nofrost-nf) | 64 |" in markdown  # the robustness row, labelled the same way
    assert "neither replicate nor refute" in report.summary[0]
    titles = [s.title for s in report.sections]
    assert titles[:2] == ["Runs", "Robustness (Tables 1–3, 6, 7 layout)"]
    assert "ε curve: nofrost-nf (Figure 7)" in titles and "Training curves" in titles and titles[-1] == "Self-audit"


def test_html_is_one_self_contained_page_with_the_markdown_beside_it(runs, tmp_path):
    written = write_report([runs["sat-bn"], runs["nofrost-nf"]], tmp_path / "out" / "report.html")
    assert written == [tmp_path / "out" / "report.html", tmp_path / "out" / "report.md"]
    page = written[0].read_text()
    # No file or network reference: every image is an embedded PNG, there are no scripts or links out.
    sources = re.findall(r"src='([^']*)'", page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    for uri in sources:
        assert base64.b64decode(uri.split(",", 1)[1])[:4] == b"\x89PNG"
    assert not re.search(r"(href|src)=['\"]?(https?:|file:|//)", page) and "<script" not in page
    # The Markdown has the same sections and tables, with its figures as files beside it.
    markdown = written[1].read_text()
    figures = re.findall(r"\]\((report_figures/[^)]+\.png)\)", markdown)
    assert len(figures) == len(sources)
    assert all((tmp_path / "out" / f).read_bytes()[:4] == b"\x89PNG" for f in figures)
    for title in re.findall(r"<h2>([^<]+)</h2>", page):
        assert f"## {title.replace('&#x27;', chr(39))}" in markdown


def test_failed_audit_checks_stand_beside_the_numbers(runs):
    result = EvaluationResult.load(runs["sat-bn"] / "eval.json")
    result.audit = [AuditCheck("deterministic logits", True, "same logits twice"),
                    AuditCheck("gradient masking", False, "PGD-2 beats AutoAttack")]
    report = build_report(_with_result(load_sources([runs["nofrost-nf"]]), result))
    block = next(b for b in report.sections[1].blocks if hasattr(b, "table"))
    rows = {row[0]: row[-1] for row in block.table.rows}
    assert rows[result.model] == "⚠ 1 failed" and rows["NoFrost (nofrost-nf)"] in ("ok", "-")
    assert block.notes == [f"⚠ {result.model}: gradient masking: PGD-2 beats AutoAttack"]
    assert "<td class='warn'>⚠ 1 failed</td>" in report.html()


def _with_result(sources, result):
    sources.results.append(result)
    return sources


def test_sweeps_are_table_4_with_mean_and_std_over_seeds(runs, tmp_path):
    results = [EvaluationResult.load(runs[name] / "eval.json") for name in ("sat-bn", "nofrost-nf")]
    sweep = SweepResult({"method.lam": ["0.5"]}, [0, 1],
                        [SweepRun(SweepPoint((("method.lam", "0.5"),), seed), r, 1.0) for seed, r in enumerate(results)])
    path = sweep.save(tmp_path / "sweep.json")
    report = build_report(load_sources([path]))
    (section,) = report.sections[:1]
    table = section.blocks[0].table
    cleans = [100 * r.clean for r in results]
    assert table.rows[0][:3] == ["method.lam=0.5", "2", f"{statistics.fmean(cleans):.2f} ± {statistics.stdev(cleans):.2f}"]
    assert "mean ± std over 2 seeds" in section.blocks[0].caption


def test_a_gamma_sweep_gets_its_tradeoff_curve(tmp_path):
    runs = [SweepRun(SweepPoint((("gamma", g),), 0), EvaluationResult.from_json(
        {"clean": 0.7 - 0.2 * float(g), "attacks": {"pgd": 0.1 + 0.1 * float(g)}, "worst_case": 0.1 + 0.1 * float(g),
         "n": 50, "dataset": "cifar10-mini"})) for g in ("0", "0.5", "1")]
    path = SweepResult({"gamma": ["0", "0.5", "1"]}, [0], runs, label="MBNAT (logits)").save(tmp_path / "g.json")
    report = build_report(load_sources([path]))
    section = report.sections[0]
    assert section.title == "Sweep: MBNAT (logits) (g)"
    assert [row[:3] for row in section.blocks[0].table.rows] == [["gamma=0", "1", "70.00"], ["gamma=0.5", "1", "60.00"],
                                                               ["gamma=1", "1", "50.00"]]
    assert isinstance(section.blocks[1], Figure) and section.blocks[1].png[:4] == b"\x89PNG"


def test_table_groups_and_alignment_render_in_html():
    table = Table(["model", "clean", "PGD-20", "Square"], groups=["", "", "white-box", "black-box"])
    table.add("NoFrost", "70.13", "12.24", "48.30")
    report = Report("t")
    report.section("S").table("caption", table)
    page = report.html()
    assert "<th class=group>white-box</th><th class=group>black-box</th>" in page
    assert "<td>NoFrost</td><td class='num'>70.13</td>" in page
    assert "|:---|---:|---:|---:|" in report.markdown("f")


@pytest.mark.parametrize("make, fragment", [
    (lambda p: p / "missing", "no such file or folder"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "is not something `nofrost report` reads"),
    (lambda p: (p / "bad.json").write_text("{") and p / "bad.json", "cannot read"),
    (lambda p: (p / "other.json").write_text('{"a": 1}') and p / "other.json", "not a nofrost evaluation result"),
])
def test_bad_inputs_get_one_clear_error(tmp_path, capsys, make, fragment):
    path = make(tmp_path)
    assert main(["report", str(path), "-o", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err
    assert not (tmp_path / "r.html").exists()
