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
