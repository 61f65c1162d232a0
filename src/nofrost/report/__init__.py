"""Reports: tables (text, Markdown, HTML), figures, and ``nofrost report``'s one-page document
from run directories, sweeps, ε curves, analyses and evaluation results."""

from nofrost.report.build import build_report, write_report
from nofrost.report.document import Report
from nofrost.report.figures import accuracy_chart
from nofrost.report.sources import load_run, load_sources
from nofrost.report.tables import Table, evaluation_table

__all__ = ["Report", "Table", "accuracy_chart", "build_report", "evaluation_table", "load_run", "load_sources",
           "write_report"]
