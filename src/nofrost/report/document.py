"""A report as data (sections of text, tables and figures), rendered to one self-contained HTML
page or to Markdown.

The HTML page embeds its figures as ``data:`` PNG URIs and its style inline, so it is one file
that opens anywhere, offline. The Markdown has the same content, with the figures written as
PNG files into a folder beside it.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path

from nofrost.files import atomic_write_bytes, atomic_write_text
from nofrost.report.tables import WARNING, Table



@dataclass
class Figure:
    """A PNG image with a caption; ``name`` is its file stem in the Markdown folder."""

    name: str
    caption: str
    png: bytes


@dataclass
class TableBlock:
    caption: str
    table: Table
    notes: list[str] = field(default_factory=list)  # lines under the table (e.g. failed audit checks)


Block = "str | TableBlock | Figure"  # a paragraph, a table or a figure


@dataclass
class Section:
    title: str
    blocks: list = field(default_factory=list)  # list[Block], in reading order

    def text(self, paragraph: str) -> Section:
        self.blocks.append(paragraph)
        return self

    def table(self, caption: str, table: Table, notes: list[str] | None = None) -> Section:
        self.blocks.append(TableBlock(caption, table, list(notes or [])))
        return self

    def figure(self, figure: Figure | None) -> Section:
        if figure is not None:
            self.blocks.append(figure)
        return self


@dataclass
class Report:
    title: str
    summary: list[str] = field(default_factory=list)  # paragraphs under the title
    sections: list[Section] = field(default_factory=list)

    def section(self, title: str) -> Section:
        section = Section(title)
        self.sections.append(section)
        return section

    @property
    def figures(self) -> list[Figure]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, Figure)]

    def html(self) -> str:
        parts = [f"<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
                 f"<meta name=viewport content='width=device-width, initial-scale=1'>"
                 f"<title>{html.escape(self.title)}</title><style>{_STYLE}</style></head><body>",
                 f"<h1>{html.escape(self.title)}</h1>"]
        parts += [f"<p class=summary>{_inline_html(p)}</p>" for p in self.summary]
        if len(self.sections) > 1:
            links = "".join(f"<li><a href='#{_anchor(s.title)}'>{html.escape(s.title)}</a></li>" for s in self.sections)
            parts.append(f"<nav><ul>{links}</ul></nav>")
        for section in self.sections:
            parts.append(f"<section id='{_anchor(section.title)}'><h2>{html.escape(section.title)}</h2>")
            for block in section.blocks:
                parts.append(_block_html(block))
            parts.append("</section>")
        parts.append("</body></html>\n")
        return "\n".join(parts)

    def markdown(self, figure_dir: str) -> str:
        """The report as Markdown; figures are referenced as ``figure_dir/<name>.png``."""
        parts = [f"# {self.title}", *self.summary]
        for section in self.sections:
            parts.append(f"## {section.title}")
            for block in section.blocks:
                if isinstance(block, TableBlock):
                    parts.append(f"**{block.caption}**\n\n{block.table.markdown()}"
                                 + "".join(f"\n\n{note}" for note in block.notes))
                elif isinstance(block, Figure):
                    parts.append(f"![{block.caption}]({figure_dir}/{block.name}.png)\n\n*{block.caption}*")
                else:
                    parts.append(block)
        return "\n\n".join(parts) + "\n"

    def write(self, output: str | Path) -> list[Path]:
        """Write ``output`` (``.html``/``.htm``: the HTML page, and the same content as Markdown
        beside it; else Markdown only), each Markdown with its figures in ``<stem>_figures/``.
        Returns the files written, the main one first."""
        output = Path(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        written = []
        if output.suffix.lower() in (".html", ".htm"):
            atomic_write_text(output, self.html())
            written.append(output)
            markdown_path = output.with_suffix(".md")
        else:
            markdown_path = output
        figure_dir = markdown_path.parent / f"{markdown_path.stem}_figures"
        names = [f.name for f in self.figures]
        if len(set(names)) < len(names):
            raise ValueError(f"two figures of the report share a name: {sorted(names)}")
        if self.figures:
            figure_dir.mkdir(parents=True, exist_ok=True)
            for figure in self.figures:
                atomic_write_bytes(figure_dir / f"{figure.name}.png", figure.png)
        atomic_write_text(markdown_path, self.markdown(figure_dir.name))
        written.append(markdown_path)
        return written


def _block_html(block) -> str:
    if isinstance(block, TableBlock):
        notes = "".join(f"<p class='note{' warn' if n.startswith(WARNING) else ''}'>{_inline_html(n)}</p>"
                        for n in block.notes)
        return (f"<figure class=table><figcaption>{_inline_html(block.caption)}</figcaption>"
                f"{_table_html(block.table)}{notes}</figure>")
    if isinstance(block, Figure):
        data = base64.b64encode(block.png).decode("ascii")
        return (f"<figure><img alt='{html.escape(block.caption)}' src='data:image/png;base64,{data}'>"
                f"<figcaption>{_inline_html(block.caption)}</figcaption></figure>")
    return f"<p>{_inline_html(block)}</p>"


def _table_html(table: Table) -> str:
    rows = []
    if table.groups:
        cells, i = [], 0
        while i < len(table.headers):
            j = i
            while j + 1 < len(table.headers) and table.groups[j + 1] == table.groups[i]:
                j += 1
            span = f" colspan={j - i + 1}" if j > i else ""
            cells.append(f"<th{span}{' class=group' if table.groups[i] else ''}>{html.escape(table.groups[i])}</th>")
            i = j + 1
        rows.append(f"<tr>{''.join(cells)}</tr>")
    numeric = table.numeric_columns()
    rows.append("<tr>" + "".join(f"<th{' class=num' if n else ''}>{html.escape(h)}</th>"
                                 for h, n in zip(table.headers, numeric)) + "</tr>")
    body = ["<tr>" + "".join(f"<td{_cell_class(c, n)}>{html.escape(c)}</td>" for c, n in zip(row, numeric)) + "</tr>"
            for row in table.rows]  # fmt: skip
    return f"<table><thead>{''.join(rows)}</thead><tbody>{''.join(body)}</tbody></table>"


def _cell_class(cell: str, numeric_column: bool) -> str:
    """Columns of numbers are right-aligned and never wrap; text is left-aligned; failed audit
    verdicts are red."""
    classes = ["num"] if numeric_column else []
    if cell.startswith(WARNING):
        classes.append("warn")
    return f" class='{' '.join(classes)}'" if classes else ""


def _inline_html(text: str) -> str:
    """Escaped text with Markdown's `code` and **bold** spans, the only markup reports use."""
    escaped = html.escape(text)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", escaped)


def _anchor(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


_STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;max-width:1180px;
margin:2em auto;padding:0 1.2em;background:#fff}
h1{font-size:1.7em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #dde2ea;
padding-bottom:.2em}
p.summary{color:#3a4150;margin:.4em 0}nav ul{display:flex;flex-wrap:wrap;gap:.3em 1.2em;padding:0;list-style:none;
font-size:.92em}nav a{color:#2457a6;text-decoration:none}
figure{margin:1.2em 0}figure img{max-width:min(100%,880px);height:auto;border:1px solid #eef0f4}
figcaption{font-size:.9em;color:#4a5260;margin:.3em 0}figure.table figcaption{font-weight:600;color:#1d2330}
table{border-collapse:collapse;font-variant-numeric:tabular-nums;font-size:.92em}
th,td{padding:.28em .7em;border-bottom:1px solid #e6e9ef;text-align:left;vertical-align:top}
.num{text-align:right;white-space:nowrap}th{white-space:nowrap}thead th{background:#f4f6fa;border-bottom:2px solid #cfd6e2}
th.group{text-align:center;border-bottom:1px solid #cfd6e2}tbody tr:hover{background:#fafbfd}
td.warn,p.warn{color:#a4261b}p.note{font-size:.88em;margin:.25em 0}
code{font-size:.9em;background:#f4f6fa;padding:0 .25em;border-radius:3px}
"""
