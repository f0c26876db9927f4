"""Run tags: a name for a set of runs (`harness tag REPORT v1.3`, or `harness gate --tag v1.3`
when every rule passes), kept in the store's run_tags table. A release's tag keeps pointing at
the runs that shipped after newer runs replace them as the latest, so a gate rule `since: v1.3`
compares a variant with what shipped then, even when that model no longer exists locally."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from harness.errors import ConfigError
from harness.store.db import Store

TAG_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")


def check_tag(tag: str) -> str:
    """A tag is 1-64 letters, digits and . _ + - (starting with a letter or digit)."""
    if not TAG_PATTERN.match(tag):
        raise ConfigError(f"tag {tag!r}: use 1-64 letters, digits and . _ + - (starting with a letter or digit)")
    return tag


def check_new_tag(store: Store, tag: str) -> None:
    """A ConfigError unless `tag` is a valid name that names no runs yet."""
    check_tag(tag)
    existing = store.query("SELECT count(*) AS n FROM run_tags WHERE tag = ?", [tag])[0]["n"]
    if existing:
        raise ConfigError(f"tag {tag} already names {existing} runs", hint="pick a new tag, or --force to move it to these runs")


def tag_runs(store: Store, tag: str, variants: list[str], tasks: list[str] | None = None, force: bool = False) -> list[dict]:
    """Tag the latest runs of `variants` (on `tasks`, default all) as `tag`; returns the tagged
    runs. A tag that names no run, or an existing tag without `force` (tags name releases:
    moving one is deliberate), is a ConfigError before anything is written."""
    check_tag(tag)
    runs = store.query("""SELECT run_id, variant, task FROM latest_runs
                          WHERE list_contains(?, variant) AND (? IS NULL OR list_contains(?, task))
                          ORDER BY variant, task""", [variants, tasks, tasks])
    if not runs:
        raise ConfigError(f"tag {tag}: no runs of {', '.join(variants)}" + (f" on {', '.join(tasks)}" if tasks else "")
                          + " in the store", hint="evaluate them first (`harness run`)")
    if not force:
        check_new_tag(store, tag)
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    with store.transaction() as con:
        con.execute("DELETE FROM run_tags WHERE tag = ?", [tag])
        con.executemany("INSERT INTO run_tags VALUES (?, ?, ?, ?, ?)", [[tag, r["run_id"], r["variant"], r["task"], now] for r in runs])
    return runs


def tagged_run(store: Store, tag: str, variant: str, task: str) -> dict | None:
    """The run of `variant` on `task` tagged `tag` (None when the tag has none)."""
    rows = store.query("""SELECT r.* FROM run_tags t JOIN runs r USING (run_id)
                          WHERE t.tag = ? AND t.variant = ? AND t.task = ?""", [tag, variant, task])
    return rows[0] if rows else None


def tag_exists(store: Store, tag: str) -> bool:
    return bool(store.query("SELECT count(*) AS n FROM run_tags WHERE tag = ?", [tag])[0]["n"])


def tags(store: Store) -> list[dict]:
    """Every tag with its runs' count and when it was set, oldest first."""
    return store.query("""SELECT tag, count(*) AS runs, min(tagged_at) AS tagged_at FROM run_tags
                          GROUP BY tag ORDER BY min(tagged_at), tag""")
