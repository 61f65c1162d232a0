"""One small table type rendered as aligned text, Markdown or HTML."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

from nofrost.evaluate.result import EvaluationResult
from nofrost.evaluate.suites import paper_columns
from nofrost.evaluate.sweep_result import WORST_CASE, accuracy_of, setting_label


WARNING = "⚠"  # a cell or note starting with it is a failed audit verdict (highlighted in HTML)
_NUMBER = re.compile(r"^[-+]?[\d.,]+( ± [\d.,]+)?( ?(%|s|min|h))?$|^-$")


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    groups: list[str] | None = None  # optional group name per column, shown above the headers

    def add(self, *cells: Any) -> None:
        self.rows.append([str(c) for c in cells])

    def text(self) -> str:
        widths = [max(len(h), *(len(r[i]) for r in self.rows)) if self.rows else len(h) for i, h in enumerate(self.headers)]
        def line(cells: list[str]) -> str:
            return "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
        rule = "  ".join("-" * w for w in widths)
        top = [self._group_line(widths)] if self.groups else []
        return "\n".join([*top, line(self.headers), rule, *(line(r) for r in self.rows)])

    def _group_line(self, widths: list[int]) -> str:
        """Each run of equal group names written once, over the columns it spans."""
        cells, i = [], 0
        while i < len(self.headers):
            j = i
            while j + 1 < len(self.headers) and self.groups[j + 1] == self.groups[i]:
                j += 1
            span = sum(widths[i : j + 1]) + 2 * (j - i)
            cells.append(self.groups[i].center(span, "-" if self.groups[i] else " "))
            i = j + 1
        return "  ".join(cells).rstrip()

    def numeric_columns(self) -> list[bool]:
        """Per column, whether every cell is a number ("40.40", "70.15 ± 0.03", "35 s", "-"), so
        renderers right-align it; a cell starting with a warning sign does not count against."""
        return [bool(self.rows) and all(_NUMBER.match(r[i]) or r[i].startswith(WARNING) for r in self.rows)
                for i in range(len(self.headers))]  # fmt: skip

    def markdown(self) -> str:
        headers = self.headers
        if self.groups:
            headers = [f"{g}: {h}" if g else h for g, h in zip(self.groups, self.headers)]
        head = "| " + " | ".join(headers) + " |"
        align = "|" + "|".join("---:" if numeric else ":---" for numeric in self.numeric_columns()) + "|"
        return "\n".join([head, align, *("| " + " | ".join(r) + " |" for r in self.rows)])

    def html(self) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.headers)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in self.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def evaluation_table(results: list[EvaluationResult]) -> Table:
    """Accuracies (%) in the paper's layout: clean | white-box | black-box | AA | worst case."""
    labels: list[str] = []
    for result in results:
        labels += [a for a in result.attacks if a not in labels]
    columns = paper_columns(labels)
    table = Table(
        ["model", "n", "clean", *(name for _, name, _ in columns), "worst-case"],
        groups=["", "", "", *(group for group, _, _ in columns), ""],
    )
    for result in results:
        accuracies = result.accuracies
        table.add(
            result.model or "-",
            result.n,
            percent(result.clean),
            *(percent(accuracies.get(label)) for _, _, label in columns),
            percent(result.worst_case),
        )
    return table


def metrics_table(results: list[EvaluationResult]) -> Table:
    """The NoFrost paper's Table 5 layout: one row per result (model), one column per metric
    (its mean; ↑ larger is better, ↓ smaller), e.g. M(x) ↑ | T(x) ↑ | D(x) ↓."""
    from nofrost.evaluate.metrics import metric_info
    from nofrost.evaluate.specs import parse_spec

    labels: list[str] = []
    for result in results:
        labels += [m for m in result.metrics if m not in labels]

    def header(label: str) -> str:
        info = metric_info(parse_spec(label).name)
        options = label.partition(":")[2]
        return f"{info.display}{' ' + options if options else ''} {'↑' if info.higher_is_better else '↓'}"

    table = Table(["model", "n", *(header(label) for label in labels)])
    for result in results:
        table.add(result.model or "-", result.n,
                  *(f"{result.metrics[label]:.4f}" if label in result.metrics else "-" for label in labels))
    return table


def sweep_table(sweep) -> Table:
    """The paper's Table 4 layout: one row per setting, accuracies (%) as mean ± std over seeds
    (the mean alone when each setting has one seed), then one row per reference run."""
    labels = sweep.labels
    first = sweep.runs[0].result.attacks if sweep.runs else {}
    columns = ["clean", *labels, WORST_CASE]
    table = Table(["setting", "seeds", "clean", *(first[label].display for label in labels), "worst-case"])
    spread = any(len(sweep.results_for(s)) > 1 for s in sweep.settings)

    def cell(setting, what: str) -> str:
        mean, std = sweep.aggregate(setting, what)
        return f"{100 * mean:.2f} ± {100 * std:.2f}" if spread else percent(mean)

    for setting in sweep.settings:
        table.add(setting_label(setting), len(sweep.results_for(setting)), *(cell(setting, c) for c in columns))
    for reference in sweep.references:
        table.add(reference.label, "-", *(percent(accuracy_of(reference.result, c)) for c in columns))
    return table


def eps_label(eps: float, norm: str) -> str:
    """``"8/255"`` for an ℓ∞ ε on the 1/255 grid, else the number (``"0.5"``)."""
    scaled = 255 * eps
    if norm == "linf" and abs(scaled - round(scaled)) < 1e-6:
        return f"{round(scaled)}/255"
    return f"{eps:.4g}"


def eps_curve_table(curve) -> Table:
    """Robust accuracy (%) per attack (rows, display names) and ε (columns), Figure 7's numbers."""
    norm = curve.results[0].norm
    table = Table(["attack", *(f"ε = {eps_label(e, norm)}" for e in curve.eps)])
    table.add("clean", *(percent(r.clean) for r in curve.results))
    for label in curve.labels:
        table.add(curve.results[0].attacks[label].display, *(percent(v) for v in curve.curve(label)))
    table.add("worst-case", *(percent(r.worst_case) for r in curve.results))
    return table


def threat_model(result: EvaluationResult) -> str:
    """``"ℓ∞ ε = 8/255 (0.03137)"`` or ``"ℓ2 ε = 0.5"``: the result's threat model in words."""
    eps = float(result.eps)
    if result.norm == "l2":
        return f"ℓ2 ε = {eps:.4g}"
    return f"ℓ∞ ε = {255 * eps:.3g}/255 ({eps:.5f})"


def audit_lines(result: EvaluationResult) -> list[str]:
    """One line per audit check, failed checks first and marked as warnings."""
    checks = sorted(result.audit, key=lambda c: c.passed)
    return [f"{'ok  ' if c.passed else 'WARN'} {c.check}: {c.detail}" for c in checks]


def corruption_table(result: EvaluationResult) -> Table:
    """Accuracy (%) per corruption (rows, benchmark order) and severity (columns), with each
    corruption's mean and, below, the mean over corruptions (and the mCE when measured)."""
    severities = sorted({s for c in result.corruptions.values() for s in c.by_severity})
    table = Table(["corruption", *(str(s) for s in severities), "mean"])
    for name, corruption in result.corruptions.items():
        table.add(name, *(percent(corruption.by_severity.get(s)) for s in severities), percent(corruption.mean))
    table.add("mean", *(percent(_mean([c.by_severity[s] for c in result.corruptions.values() if s in c.by_severity]))
                        for s in severities), percent(result.mean_corruption_accuracy))
    return table


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def shift_table(results: dict[str, list[EvaluationResult]]) -> Table:
    """One row per run (``{run: its distribution-shift results}``), one column per dataset:
    the accuracy on it (%; a corruption benchmark's mean corruption accuracy), and the mCE and
    relative mCE where they were measured."""
    datasets: list[str] = []
    for evaluations in results.values():
        datasets += [r.dataset for r in evaluations if r.dataset not in datasets]

    def measured(key: str) -> list[str]:
        return [d for d in datasets
                if any(r.dataset == d and getattr(r, key) is not None for rs in results.values() for r in rs)]

    extra = [(d, key, label) for key, label in (("mce", "mCE"), ("relative_mce", "relative mCE")) for d in measured(key)]
    table = Table(["run", *datasets, *(f"{d} {label}" for d, _, label in extra)])
    for run, evaluations in results.items():
        by_dataset = {r.dataset: r for r in evaluations}
        table.add(run, *(percent(_shift_accuracy(by_dataset.get(d))) for d in datasets),
                  *(percent(getattr(by_dataset[d], key) if d in by_dataset else None) for d, key, _ in extra))
    return table


def _shift_accuracy(result: EvaluationResult | None) -> float | None:
    if result is None:
        return None
    return result.mean_corruption_accuracy if result.corruptions else result.clean


def per_corruption_table(results: dict[str, EvaluationResult]) -> Table:
    """Mean accuracy (%) over the severities evaluated, per corruption (rows) and result
    (columns, ``{label: corruption benchmark result}``)."""
    names: list[str] = []
    for result in results.values():
        names += [c for c in result.corruptions if c not in names]
    table = Table(["corruption", *results])
    for name in names:
        table.add(name, *(percent(r.corruptions[name].mean if name in r.corruptions else None)
                          for r in results.values()))
    table.add("mean", *(percent(r.mean_corruption_accuracy) for r in results.values()))
    return table
