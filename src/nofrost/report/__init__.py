"""Tables (text, Markdown, HTML) and figures from run directories and evaluation results."""

from nofrost.report.figures import accuracy_chart
from nofrost.report.runs import load_run, runs_report, summarize_runs
from nofrost.report.tables import Table, evaluation_table

__all__ = ["Table", "accuracy_chart", "evaluation_table", "load_run", "runs_report", "summarize_runs"]
