"""One small table type rendered as aligned text, Markdown or HTML."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def add(self, *cells: Any) -> None:
        self.rows.append([str(c) for c in cells])

    def text(self) -> str:
        widths = [max(len(h), *(len(r[i]) for r in self.rows)) if self.rows else len(h) for i, h in enumerate(self.headers)]
        def line(cells: list[str]) -> str:
            return "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
        rule = "  ".join("-" * w for w in widths)
        return "\n".join([line(self.headers), rule, *(line(r) for r in self.rows)])

    def markdown(self) -> str:
        head = "| " + " | ".join(self.headers) + " |"
        align = "|" + "|".join([":---"] + ["---:"] * (len(self.headers) - 1)) + "|"
        return "\n".join([head, align, *("| " + " | ".join(r) + " |" for r in self.rows)])

    def html(self) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.headers)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in self.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def evaluation_table(results: list[dict[str, Any]]) -> Table:
    """Accuracies (%) of one or more evaluation results: clean | each attack | worst case."""
    labels: list[str] = []
    for result in results:
        labels += [a for a in result["attacks"] if a not in labels]
    table = Table(["model", "n", "clean", *labels, "worst-case"])
    for result in results:
        table.add(
            result.get("model") or "-",
            result["n"],
            percent(result["clean"]),
            *(percent(result["attacks"].get(a)) for a in labels),
            percent(result["worst_case"]),
        )
    return table


def audit_lines(result: dict[str, Any]) -> list[str]:
    """One line per audit check, failed checks first and marked as warnings."""
    checks = sorted(result.get("audit", []), key=lambda c: c["passed"])
    return [f"{'ok  ' if c['passed'] else 'WARN'} {c['check']}: {c['detail']}" for c in checks]
