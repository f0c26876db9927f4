"""A Hugging Face model card for a built variant, from stored rows: `model-index` results (task,
dataset, metric, value) that the Hub reads, and a body with every figure's interval, the lineage
and, given a report file, the gate's verdicts on the variant. `--push` uploads card and weights."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from harness import __version__
from harness.analysis.metrics import summarize
from harness.errors import ConfigError, StoreError, require
from harness.report.formatting import figure, size
from harness.store.db import Store
from harness.textfile import write_atomic

TASK_TYPES = {"multiple_choice": ("multiple-choice", "Multiple Choice"), "classification": ("text-classification", "Text Classification"),
              "generation": ("text-generation", "Text Generation"), "perplexity": ("text-generation", "Language Modeling"),
              "judge_single": ("text-generation", "LLM-as-judge rating"), "judge_pairwise": ("text-generation", "LLM-as-judge comparison"),
              "latency": ("text-generation", "Serving"), "lm_eval": ("text-generation", "lm-eval task")}
"""Our task kinds as the Hub's task types (and a display name)."""


@dataclass(frozen=True)
class Card:
    variant: str
    text: str
    """README.md: YAML front matter (model-index) and a markdown body."""
    artifact: Path | None
    """The variant's built weights (a directory or file), when it has any on this machine."""


def _variant(store: Store, name: str) -> dict:
    """The variant's build record: the one whose weights produced its latest runs (by key)."""
    runs = store.query("SELECT variant_key, count(*) AS n FROM latest_runs WHERE variant = ? GROUP BY 1 ORDER BY n DESC", [name])
    if not runs:
        known = [r["variant"] for r in store.query("SELECT DISTINCT variant FROM latest_runs ORDER BY 1")]
        raise StoreError(f"no run of variant '{name}' in the store, so there is nothing for its card to report "
                         f"(variants with runs: {', '.join(known) or 'none'})", hint=f"`harness run SUITE --variant {name}` first")
    rows = store.query("SELECT * FROM variants WHERE variant_key = ?", [runs[0]["variant_key"]]) or \
        store.query("SELECT * FROM variants WHERE name = ? ORDER BY created_at DESC LIMIT 1", [name])
    return rows[0] if rows else {"name": name, "parent_name": None, "method": "base", "artifact_kind": None, "artifact_path": None}


def _lineage(store: Store, name: str) -> list[dict]:
    """The variant and its ancestors, root first."""
    chain, seen = [], set()
    while name and name not in seen:
        seen.add(name)
        rows = store.query("SELECT name, parent_name, method, variant_key, wall_s, trainable_params, artifact_bytes FROM variants "
                           "WHERE name = ? ORDER BY created_at DESC LIMIT 1", [name])
        if not rows:
            chain.append({"name": name, "method": "base"})
            break
        chain.append(rows[0])
        name = rows[0]["parent_name"]
    return chain[::-1]


def build_card(store: Store, variant: str, verdicts: list | None = None, report_title: str | None = None,
               base_model: str | None = None, confidence: float = 0.95) -> Card:
    """The card of `variant` from its latest runs (what reports read); `verdicts`: gate verdicts
    (harness.report.gate.Verdict) of rules on it, from the report called `report_title`."""
    import yaml

    row = _variant(store, variant)
    runs = {r["run_id"]: r for r in store.query("SELECT * FROM latest_runs WHERE variant = ? ORDER BY suite, task", [variant])}
    summary = summarize(store, [variant], run_ids=list(runs), confidence=confidence)
    results, lines = [], []
    for run_id, r in runs.items():
        hub_type, hub_name = TASK_TYPES.get(r["task_type"], ("text-generation", r["task_type"]))
        figures = [s for s in summary if s.run_id == run_id]
        if not figures:
            continue
        results.append({"task": {"type": hub_type, "name": hub_name},
                        "dataset": {"name": f"{r['suite']} / {r['task']}", "type": r["suite"], "config": r["task"],
                                    "args": {"data_hash": r["data_hash"], "harness_run_id": run_id}},
                        "metrics": [{"type": s.metric, "value": round(s.estimate.mean, 6),
                                     "name": f"{s.metric} ({confidence:.0%} CI {figure(s.estimate.low)} to {figure(s.estimate.high)}, "
                                             f"n={s.estimate.n})", "verified": False} for s in figures],
                        "source": {"name": f"harness {r['harness_version']}", "url": "https://pypi.org/project/harness/"}})
        for s in figures:
            e = s.estimate
            partial = f" (partial: {r['n_samples']} of {r['n_items_total']} items)" if r["partial"] else ""
            lines.append(f"| {r['suite']} / {r['task']} | {s.metric} | {figure(e.mean)} | [{figure(e.low)}, {figure(e.high)}] | "
                         f"{e.n}{partial} | `{run_id}` |")
    meta: dict = {"library_name": "peft" if row.get("artifact_kind") == "adapter" else "transformers",
                  "tags": ["harness", "evaluation"] + ([row["method"]] if row.get("method") else [])}
    if base_model:
        meta["base_model"] = base_model
    meta["model-index"] = [{"name": variant, "results": results}]
    body = [f"# {variant}", "",
            f"Evaluated with harness {__version__} on {datetime.now(timezone.utc):%Y-%m-%d}. Every figure is the mean over the "
            f"task's items with a {confidence:.0%} bootstrap confidence interval and the number of items (n); the `model-index` "
            "above carries the means (the Hub shows one value per metric) with the interval in each metric's name.", "",
            "## Results", "", "| task | metric | mean | interval | n | run |", "|---|---|---|---|---|---|", *lines, ""]
    if verdicts is not None:
        body += [f"## Gate ({report_title})", "", "| rule | verdict | why |", "|---|---|---|"]
        body += [f"| {_cell(v.label)} | **{v.status}** | {_cell(v.detail)} |" for v in verdicts]
        if not verdicts:
            body.append("| (no rule of the report names this variant) | | |")
        body.append("")
    chain = _lineage(store, variant)
    body += ["## Lineage", "", " → ".join(f"{c['name']} ({c['method']})" for c in chain), ""]
    if row.get("variant_key"):
        facts = [f"key `{row['variant_key']}`"]
        if row.get("trainable_params"):
            facts.append(f"{row['trainable_params']:,} trainable of {row['total_params']:,} parameters")
        if row.get("wall_s"):
            facts.append(f"built in {row['wall_s']:.0f} s on {row['device']}")
        if row.get("artifact_bytes"):
            facts.append(f"artifact {row['artifact_kind']}, {size(row['artifact_bytes'])}")
        body += ["Build: " + "; ".join(facts) + ".", ""]
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    artifact = Path(row["artifact_path"]) if row.get("artifact_path") else None
    return Card(variant, f"---\n{front}---\n\n" + "\n".join(body), artifact if artifact is not None and artifact.exists() else None)


def _cell(text: str) -> str:
    """Text inside a markdown table cell: no pipe or line break can end the cell early."""
    return " ".join(str(text).split()).replace("|", "\\|")


def write_card(card: Card, out: Path) -> Path:
    """README.md in `out` (a directory), written whole or not at all."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: is a file; the card is written into a directory", hint="pass another --out directory")
    return write_atomic(out / "README.md", card.text, "card", hint="pass another --out directory")


def upload_plan(card_path: Path, card: Card) -> list[tuple[str, Path]]:
    """(path in the repository, local file) for everything `--push` uploads: the card as
    README.md and the variant's built files."""
    files = [("README.md", card_path)]
    if card.artifact is None:
        return files
    if card.artifact.is_file():
        return files + [(card.artifact.name, card.artifact)]
    return files + sorted((str(p.relative_to(card.artifact)), p) for p in card.artifact.rglob("*")
                          if p.is_file() and p.name != "README.md" and not p.name.startswith("."))


def push(plan: list[tuple[str, Path]], repo: str, private: bool = True) -> str:
    """Create `repo` on the Hub (private by default) and upload the plan in one commit. Needs
    network and a token (HF_TOKEN, or `huggingface-cli login`): without one, a ConfigError
    before any request. Returns the commit URL."""
    hub = require("huggingface_hub", "harness card --push", "hub")
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false"):
        raise ConfigError("--push needs the network, and HF_HUB_OFFLINE is set (harness sets it unless you set HF_HUB_OFFLINE=0)",
                          hint="run with HF_HUB_OFFLINE=0 harness card ... --push REPO, or --dry-run to see what would be uploaded")
    token = hub.get_token()
    if not token:
        raise ConfigError("--push needs a Hugging Face token with write access", hint="set HF_TOKEN, or run `huggingface-cli login`")
    api = hub.HfApi(token=token)
    api.create_repo(repo, private=private, exist_ok=True)
    operations = [hub.CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(path)) for name, path in plan]
    info = api.create_commit(repo, operations, commit_message=f"harness {__version__}: model card and weights")
    return str(info.commit_url)


def describe(plan: list[tuple[str, Path]]) -> list[str]:
    """What a push would upload, a line per file."""
    return [f"{name}  ({size(path.stat().st_size)})" for name, path in plan]

