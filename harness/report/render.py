"""Render a ReportView to one self-contained HTML file (inline CSS and SVG, no CDN)."""

from __future__ import annotations

from pathlib import Path

from harness.report.view import ReportView, describe


def render_html(view: ReportView) -> str:
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    # Autoescape on: model outputs and prompts are untrusted text.
    env = Environment(loader=PackageLoader("harness.report", "templates"), autoescape=select_autoescape(["html", "j2"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    from harness.metrics import LOWER_IS_BETTER

    return env.get_template("report.html.j2").render(view=view, describe=describe, lower_is_better=LOWER_IS_BETTER)


def write_report(view: ReportView, out: Path) -> Path:
    """Write atomically: a reader never sees half a report."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(render_html(view), encoding="utf-8")
    tmp.replace(out)
    return out
