"""Text views of the store for `harness list`."""

from __future__ import annotations

from harness.store.db import Store


def lineage_tree(store: Store) -> list[str]:
    """Every stored build as an indented tree, base models at the roots."""
    rows = store.query("SELECT variant_key, name, parent_key, method, artifact_kind, trainable_params, wall_s, created_at "
                       "FROM variants ORDER BY created_at")
    children: dict[str | None, list[dict]] = {}
    keys = {r["variant_key"] for r in rows}
    for r in rows:
        parent = r["parent_key"] if r["parent_key"] in keys else None
        children.setdefault(parent, []).append(r)
    lines: list[str] = []

    def walk(parent: str | None, depth: int) -> None:
        for r in children.get(parent, []):
            extra = f", {r['trainable_params']:,} trainable" if r["trainable_params"] else ""
            built = f", built in {r['wall_s']:.0f}s" if r["wall_s"] else ""
            lines.append(f"{'  ' * depth}{'└─ ' if depth else ''}{r['name']} [{r['method']}, {r['variant_key']}{extra}{built}]")
            walk(r["variant_key"], depth + 1)

    walk(None, 0)
    return lines or ["(no variants in the store yet)"]


def scorer_lines() -> list[str]:
    """Every registered scorer with the task types it applies to and the metrics it declares."""
    from harness import registry

    lines = []
    for name in registry.names("scorer"):
        target = registry.target("scorer", name)
        s = registry.resolve("scorer", name)
        lines.append(f"{name:18} {target}")
        lines.append(f"{'':18} {getattr(s, 'description', '')} (tasks: {', '.join(getattr(s, 'task_types', ()))})")
        for m in getattr(s, "metrics", ()):
            lines.append(f"{'':18}   {_metric_line(m)}")
    return lines


def metric_lines() -> list[str]:
    """Every declared metric: name, direction, values (which decides the test), level, range, provider."""
    from harness.metricspec import declarations

    lines = [f"{'metric':32} {'better':7} {'values':11} {'level':5} {'test':30} {'range':14} provider"]
    for d in sorted(declarations(), key=lambda d: (d.metric.name, d.provider)):
        m = d.metric
        lines.append(f"{m.name:32} {m.direction:7} {m.values:11} {m.level:5} {m.test:30} {_range(m):14} {d.provider}")
    return lines


def _range(m) -> str:
    lo = "-inf" if m.low is None else f"{m.low:g}"
    hi = "inf" if m.high is None else f"{m.high:g}"
    return f"[{lo}, {hi}]" + (f" {m.unit}" if m.unit else "")


def _metric_line(m) -> str:
    better = {"higher": "higher is better", "lower": "lower is better", "none": "no better direction"}[m.direction]
    return f"{m.name}: {m.display}; {better}; {m.values}, per {m.level}; {m.test}; range {_range(m)}"
