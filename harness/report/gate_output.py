"""The gate's verdicts for CI systems: JUnit XML (one testcase per rule), a markdown table (for
pull requests and GitHub's step summary) and a machine-readable JSON verdict."""

from __future__ import annotations

import json
import math
from pathlib import Path

from harness.report.formatting import figure, p_value
from harness.report.gate import GateResult, Verdict
from harness.textfile import write_atomic


def _num(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and (math.isnan(x) or math.isinf(x))) else x


def verdict_dict(v: Verdict) -> dict:
    """One rule's verdict as plain data."""
    o = v.outcome
    return {
        "rule": v.label, "status": v.status, "kind": v.rule.rule_kind, "variant": v.rule.variant, "baseline": v.rule.baseline,
        "task": v.rule.task, "metric": v.rule.metric, "direction": v.metric.direction if v.metric else None,
        "thresholds": list(v.thresholds), "good_side": v.good or None, "alpha": v.alpha,
        "estimate": _num(o.estimate) if o else None, "estimand": o.estimand if o else None,
        "lower_bound": _num(o.low) if o else None, "upper_bound": _num(o.high) if o else None,
        "n": o.n if o else None, "test": o.method if o else None,
        "p_value": _num(v.p_value), "p_adjusted": _num(v.p_adjusted), "mde": _num(v.mde), "n_needed": _num(v.n_needed),
        "noise_band": _num(v.noise_band), "inside_noise": v.inside_noise,
        "reason": v.detail,
    }


def to_json(result: GateResult, exit_code: int, alpha: float, multiplicity: str) -> str:
    """The whole gate as JSON: overall verdict, exit code, every rule, warnings."""
    return json.dumps({"verdict": result.status, "exit_code": exit_code, "alpha": alpha, "multiplicity": multiplicity,
                       "counts": {s: sum(v.status == s for v in result.verdicts) for s in ("pass", "fail", "inconclusive", "error")},
                       "rules": [verdict_dict(v) for v in result.verdicts], "warnings": result.warnings}, indent=2)


def to_junit(result: GateResult, name: str = "harness gate") -> str:
    """JUnit XML: a failure per failed rule, skipped (with the reason) per inconclusive rule, an
    error per rule that could not be evaluated."""
    from xml.etree import ElementTree as ET

    suite = ET.Element("testsuite", name=name, tests=str(len(result.verdicts)),
                       failures=str(sum(v.status == "fail" for v in result.verdicts)),
                       errors=str(sum(v.status == "error" for v in result.verdicts)),
                       skipped=str(sum(v.status == "inconclusive" for v in result.verdicts)))
    for v in result.verdicts:
        case = ET.SubElement(suite, "testcase", name=v.label, classname=f"gate.{v.rule.task}.{v.rule.metric}")
        if v.status == "fail":
            ET.SubElement(case, "failure", message=v.detail, type="GateRuleFailed").text = v.detail
        elif v.status == "inconclusive":
            ET.SubElement(case, "skipped", message=f"inconclusive: {v.detail}")
        elif v.status == "error":
            ET.SubElement(case, "error", message=v.detail, type="GateRuleError").text = v.detail
        ET.SubElement(case, "system-out").text = v.detail
    if result.warnings:
        ET.SubElement(suite, "system-err").text = "\n".join(result.warnings)
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(result: GateResult, title: str = "Gate") -> str:
    """A markdown table of verdicts, estimates, bounds, p-values and MDE."""
    icon = {"pass": "✅ pass", "fail": "❌ fail", "inconclusive": "⚠️ inconclusive", "error": "🛑 error"}
    lines = [f"### {title}: {result.status.upper()}", "",
             "| verdict | rule | estimate | one-sided bounds | threshold | n | p (adjusted) | MDE | why |",
             "|---|---|---|---|---|---|---|---|---|"]
    for v in result.verdicts:
        o = v.outcome
        est = figure(o.estimate) if o else "–"
        bounds = f"[{figure(o.low)}, {figure(o.high)}]" if o else "–"
        p = f"{p_value(v.p_value)} ({p_value(v.p_adjusted)})" if not math.isnan(v.p_value) else "–"
        lines.append(f"| {icon[v.status]} | {_cell(v.label)} | {est} | {bounds} | {', '.join(figure(t) for t in v.thresholds) or '–'} "
                     f"| {o.n if o else '–'} | {p} | {figure(v.mde)} | {_cell(v.detail)} |")
    if result.warnings:
        lines += ["", "**Coverage warnings**", ""] + [f"- {_cell(w)}" for w in result.warnings]
    return "\n".join(lines) + "\n"


def write_text(path: Path, text: str, append: bool = False) -> None:
    """Write (or append to) a report file, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if append:
        with path.open("a", encoding="utf-8") as f:
            f.write(text)
    else:
        write_atomic(path, text, "file")


COLOURS = {"pass": "\033[32m", "fail": "\033[31m", "inconclusive": "\033[33m", "error": "\033[35m"}
"""ANSI colours of the verdict words on a terminal: green, red, yellow, magenta."""


def use_colour(stream) -> bool:
    """Colour only on a terminal, and never with NO_COLOR set (no-color.org); FORCE_COLOR forces it."""
    import os

    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return bool(getattr(stream, "isatty", lambda: False)()) and os.environ.get("TERM") != "dumb"


def paint(word: str, status: str, colour: bool) -> str:
    """`word` in its verdict's colour (bold), or as it is."""
    return f"\033[1m{COLOURS[status]}{word}\033[0m" if colour and status in COLOURS else word


def terminal_line(v: Verdict, colour: bool) -> str:
    """A verdict's line as `harness gate` prints it, its status word coloured when `colour`."""
    line = v.line()
    head = f"{v.status.upper():13}"
    return paint(head.rstrip(), v.status, colour) + line[len(head.rstrip()):] if line.startswith(head) else line
