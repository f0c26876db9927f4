"""Render a ReportView to one self-contained HTML file (inline CSS and SVG, no CDN)."""

from __future__ import annotations

from pathlib import Path

from harness.report.formatting import figure, p_value, size
from harness.report.view import ReportView
from harness.stats.metricspec import arrow
from harness.textfile import write_atomic


def render_html(view: ReportView, power: float = 0.8) -> str:
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    # Autoescape on: model outputs and prompts are untrusted text.
    env = Environment(loader=PackageLoader("harness.report", "templates"), autoescape=select_autoescape(["html", "j2"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env.get_template("report.html.j2").render(view=view, num=figure, pfmt=p_value, power=power, arrow=arrow, size=size)



def write_report(view: ReportView, out: Path) -> Path:
    """Write atomically: a reader never sees half a report, and a failure leaves nothing behind."""
    return write_atomic(out, render_html(view, view.power), "report", hint="--out takes a file path")
