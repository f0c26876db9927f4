"""The `harness` command. Each subcommand is a thin call into one library function.
Nothing heavy is imported at module level, so `harness --help` is instant."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from harness import __version__

log = logging.getLogger("harness.cli")

DEFAULT_STORE = ".harness/harness.duckdb"


def _positive(value: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def _non_negative(value: str) -> float:
    """argparse type: a number >= 0."""
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if not x >= 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return x


def _finite(x: float | None) -> float | None:
    """A figure for JSON: NaN and infinities (undefined or unbounded) as null."""
    import math

    return x if x is not None and math.isfinite(x) else None


def _store_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", type=Path, default=Path(os.environ.get("HARNESS_STORE", DEFAULT_STORE)),
                   help=f"DuckDB results file (default: $HARNESS_STORE or {DEFAULT_STORE})")


def _log_arg(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--log", action="append", choices=["mlflow", "wandb"], metavar="TRACKER",
                   help=f"also record {what} in an experiment tracker: mlflow or wandb (repeatable; needs "
                        "harness[mlflow] / harness[wandb]; configured by MLFLOW_TRACKING_URI / WANDB_MODE, WANDB_PROJECT)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harness", description="Build, evaluate, report on and gate fine-tuned LLM variants.")
    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-v: debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("init", help="write a working starter workspace (suite, models, report, data, JSON Schemas) for a model",
                       description="Write a starter workspace into DIR for the model --model names (default: the embedded "
                                   "Gemma 3 270M): suites/starter.yaml (a multiple-choice and a generation task over small data "
                                   "in data/), models/model.yaml, reports/starter.yaml with a gate rule, and schemas/*.schema.json "
                                   "that the YAML files reference, so editors complete and check their keys. Existing files are "
                                   "left alone (exit 2) unless --force.")
    p.add_argument("dir", type=Path, nargs="?", default=Path("."), help="the workspace folder (default: the current one)")
    p.add_argument("--model", default="embedded", metavar="SPEC", help="the model, as `harness run --model` takes it "
                   "(hf:ORG/NAME, hf:DIR, gguf:FILE, endpoint:URL,model=NAME, embedded, fake; default embedded)")
    p.add_argument("--force", action="store_true", help="overwrite existing starter files")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("validate", help="check suite, model and report files without loading a model",
                       description="Validate declarative files: structure, names, data files, templates. "
                                   "With no paths, checks suites/, models/ and reports/ in the current directory.")
    p.add_argument("paths", nargs="*", type=Path, help="files or directories (default: suites models reports)")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("build", help="build the variants of a models file (content-addressed, lineage order)",
                       description="Build every variant of MODELS (or those named with --variant) and any missing ancestor. "
                                   "Unchanged variants are reused; --force rebuilds.")
    p.add_argument("models", type=Path, help="models file, e.g. models/demo.yaml")
    p.add_argument("--variant", action="append", help="build only this variant (and its ancestors); repeatable")
    p.add_argument("--force", action="store_true", help="rebuild even when an identical build exists")
    _store_arg(p)
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("run", help="evaluate variants on suites; every sample x scorer goes to the store",
                       description="Evaluate the variants of --models on every task of the given suites. "
                                   "Tasks whose inputs are unchanged since a stored run are reused; --force recomputes. "
                                   "Finished items are checkpointed as they go, so after a crash the same command resumes "
                                   "where it stopped (HARNESS_CHECKPOINT_ITEMS, _MIN_SECONDS, _SECONDS tune how often). "
                                   "The store is held only while committing: reports, gates and listings can read it meanwhile. "
                                   "Exit codes: 0 done, 1 done but judge calls failed after their retries (stored as "
                                   "unjudged; running the command again asks exactly those calls), 2 invalid input.")
    p.add_argument("suites", nargs="+", type=Path, help="suite files, e.g. suites/mmlu_sample.yaml")
    p.add_argument("--models", type=Path, help="models file naming the base and variants (and any local judge)")
    p.add_argument("--model", metavar="SPEC",
                   help="a one-off model instead of --models: hf:ORG/NAME or hf:DIR, gguf:FILE, endpoint:URL,model=NAME, "
                        "embedded or fake, with ,name=, ,peft=ADAPTER_DIR, ,dtype=, ,chat_template= or backend options "
                        "(,batch_size=auto); written as a models file beside the store")
    p.add_argument("--seed", type=int, help="override every suite's seed (sampling, --limit draws)")
    p.add_argument("--num-fewshot", type=int, metavar="K", help="override the few-shot count of every task that has examples")
    p.add_argument("--gen-kwargs", metavar="K=V,...",
                   help="override generation settings of every generation task, e.g. temperature=0.7,top_p=0.9,max_new_tokens=64 "
                        "(stop: strings separated by |)")
    p.add_argument("--batch-size", metavar="N|auto",
                   help="override every generation task's batch size; auto (with --model): the hf backend's largest batch that fits")
    p.add_argument("--json", action="store_true", help="print the results as JSON (one object per figure) instead of a table")
    p.add_argument("--answers", action="append", metavar="NAME=FILE",
                   help="also evaluate pre-generated answers (MT-Bench model_answer JSONL, or {id, output} lines) "
                        "as if NAME were a variant; repeatable. Without --variant, only the answer sets are evaluated")
    p.add_argument("--variant", action="append", help="evaluate only this variant; repeatable (default: all)")
    p.add_argument("--limit", type=_positive, metavar="N",
                   help="evaluate a seeded random sample of N items of each task (a smoke test: the run is recorded as "
                        "partial, and reports and gates keep reading full runs)")
    p.add_argument("--force", action="store_true", help="recompute even when an identical run is stored")
    p.add_argument("--until-decided", type=Path, metavar="REPORT",
                   help="evaluate a growing seeded random sample of each task (20, 30, 45, ... items) and stop as soon as "
                        "every gate rule of REPORT is decided, re-testing them after each step with anytime-valid bounds; "
                        "exit codes as `harness gate`")
    p.add_argument("--budget-items", type=int, metavar="N",
                   help="with --until-decided: at most N items per task (default: all); then undecided rules are "
                        "inconclusive, with the items they would need")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="evaluate on a Ray cluster: each model's replicas (models file `resources:`) evaluate shards of "
                        "its items, and this process alone writes the store. No ADDRESS: a local Ray instance with this "
                        "machine's CPUs and GPUs; else host:port of `ray start --head`, ray://host:port, or auto "
                        "(needs harness[ray]). Results are the single-process run's")
    p.add_argument("--shard-items", type=_positive, metavar="N",
                   help="with --ray: items per shard (default 32, rounded up to whole generation batches); a killed "
                        "replica loses at most its shard in flight")
    _log_arg(p, "each variant's metrics with intervals and every run's provenance")
    _store_arg(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("load", help="capacity at an SLO: a served model under open-loop Poisson load at increasing rates",
                       description="Run the load tasks (type: load) of the suites against a served model (an OpenAI-compatible "
                                   "endpoint: llama.cpp's server, vLLM, any API): at each rate, requests arrive on a seeded "
                                   "Poisson schedule whether or not earlier ones finished; each one's latency and time to first "
                                   "token are measured from its arrival. Prints each rate's percentiles with intervals, "
                                   "throughput, failures and SLO verdict, and the highest rate that meets the SLO (with its cost "
                                   "per 1K output tokens from the task's price_per_hour). Stored as runs, like `harness run`. "
                                   "An unreachable server is exit 2 before any request.")
    p.add_argument("suites", nargs="+", type=Path, help="suite files with load tasks")
    p.add_argument("--models", type=Path, help="models file naming the served model(s) (source: endpoint)")
    p.add_argument("--variant", action="append", help="only this model of --models; repeatable")
    p.add_argument("--model", metavar="SPEC", help="the served model instead of --models: endpoint:URL,model=NAME[,name=...]")
    p.add_argument("--rates", type=float, nargs="+", metavar="R", help="override the arrival rates (requests per second)")
    p.add_argument("--requests", type=int, metavar="N", help="override the requests sent per rate")
    p.add_argument("--slo-ms", type=float, metavar="MS", help="override the SLO's latency budget (milliseconds)")
    p.add_argument("--percentile", type=float, metavar="Q", help="override the SLO's percentile (e.g. 95)")
    p.add_argument("--seed", type=int, help="override the suites' seed (the arrival schedules)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    _store_arg(p)
    p.set_defaults(func=cmd_load, num_fewshot=None, gen_kwargs=None, batch_size=None)

    p = sub.add_parser("ship", help="build a parent's export candidates, gate each against it, recommend one",
                       description="Build the candidates a sweep file names (GGUF exports, gguf_lora, quantized variants), "
                                   "evaluate them and the parent on its suites, decide each candidate's rules against the "
                                   "parent, and print a table (size, tokens/s and p95 latency on the latency task, each "
                                   "rule's verdict) with the smallest (or fastest) candidate that passes every rule marked. "
                                   "Exit 0 a candidate is chosen, 1 none passes, 3 none passes yet but some rules are "
                                   "inconclusive, 2 an input error.")
    p.add_argument("sweep", type=Path, help="the sweep file (models, parent, candidates, suites, rules)")
    p.add_argument("--budget-mb", type=float, metavar="MB", help="override the sweep's size budget")
    p.add_argument("--min-tokens-per-s", type=float, metavar="T", help="override the sweep's minimum throughput")
    _store_arg(p)
    p.set_defaults(func=cmd_ship)

    p = sub.add_parser("report", help="render a self-contained HTML report",
                       description="Render the report described by REPORT from the stored rows into one HTML file.")
    p.add_argument("report", type=Path, help="report file, e.g. reports/demo.yaml")
    p.add_argument("--out", type=Path, help="output HTML (default: .harness/reports/<report name>.html)")
    _log_arg(p, "every variant's figures with intervals, the gate's verdicts and the HTML report (as an artifact)")
    _store_arg(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("gate", help="apply a report file's gate rules; exit 0 pass, 1 fail, 3 inconclusive, 2 error",
                       description="Evaluate the gate rules of REPORT against the stored rows, each as a one-sided hypothesis "
                                   "test in the metric's declared direction. Prints one line per rule: the estimate, its "
                                   "bounds, the p-value (Holm-adjusted across rules) and, when the data can't decide, the "
                                   "minimum detectable effect and the items that would decide it. Exit codes: 0 every rule "
                                   "passes, 1 a rule fails, 3 a rule is inconclusive (and none fails), 2 a rule can't be "
                                   "evaluated or the file is invalid.")
    p.add_argument("report", type=Path, help="report file with a `gate:` section")
    p.add_argument("--junit", type=Path, metavar="FILE", help="also write JUnit XML (one testcase per rule)")
    p.add_argument("--markdown", type=Path, metavar="FILE",
                   help="also write a markdown table of verdicts (appended to $GITHUB_STEP_SUMMARY as well when it is set)")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the verdicts as JSON")
    p.add_argument("--inconclusive", choices=["inconclusive", "pass", "fail"], default="inconclusive",
                   help="exit code for an inconclusive gate: 3 (default), or as pass (0) or fail (1) for two-state CI")
    p.add_argument("--tag", metavar="TAG",
                   help="when every rule passes, tag the latest runs of the report's variants as TAG (a release: later "
                        "rules `since: TAG` compare with them); an existing tag is an error")
    _store_arg(p)
    p.set_defaults(func=cmd_gate)

    p = sub.add_parser("tag", help="name the latest runs of a report's variants (a release), or list the tags",
                       description="Tag the latest runs of REPORT's variants (on its tasks, or --task) as TAG, so a gate rule "
                                   "`since: TAG` can compare a later run with them and report trends can be read per tag. "
                                   "A tag names releases: moving an existing tag needs --force. Without arguments: list "
                                   "the tags.")
    p.add_argument("report", type=Path, nargs="?", help="report file whose variants' latest runs are tagged")
    p.add_argument("tag", nargs="?", help="the tag: 1-64 letters, digits and . _ + -")
    p.add_argument("--variant", action="append", metavar="V", help="only this variant of the report (repeatable)")
    p.add_argument("--task", action="append", metavar="T", help="only this task (repeatable; default: the report's tasks, or all)")
    p.add_argument("--force", action="store_true", help="move an existing tag to these runs")
    _store_arg(p)
    p.set_defaults(func=cmd_tag)

    p = sub.add_parser("noise", help="how far a variant's figures move under serving settings that should not matter",
                       description="Re-run a seeded slice of the suites' tasks for one variant under changed batch size, thread "
                                   "count and sampling seed (and llama.cpp, where the variant has a GGUF), and store each "
                                   "item-level metric's band: the largest distance of any setting's mean from the declared one. "
                                   "Gates then mark a rule whose margin or observed difference lies inside the band, and the "
                                   "report shows it. Nothing is written as a run.")
    p.add_argument("suites", nargs="+", type=Path, help="suite files, e.g. suites/mmlu_sample.yaml")
    p.add_argument("--models", type=Path, required=True, help="models file that declares the variant")
    p.add_argument("--variant", required=True, help="the variant to measure")
    p.add_argument("--limit", type=_positive, metavar="N", default=None,
                   help="items per task in the seeded slice (default: 40; the slice is the one `harness run --limit N` draws)")
    _store_arg(p)
    p.set_defaults(func=cmd_noise)

    p = sub.add_parser("plan", help="how many items each gate rule and comparison needs to decide",
                       description="For every gate rule and report comparison of REPORT: the minimum detectable effect at the "
                                   "current n (from the stored item-level variance), and for undecided ones the items needed "
                                   "to decide, with the evaluation time (from the recorded throughput) and cost.")
    p.add_argument("report", type=Path, help="report file")
    p.add_argument("--price-per-hour", type=_non_negative, metavar="PRICE",
                   help="instance price for the cost estimate (default: the price_per_hour of a latency task in the store)")
    _store_arg(p)
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("audit", help="hallucination audit sheets: export claims for human review, import the labels",
                       description="export: write a random sample of checked claims (source, claim, verifier verdict) to CSV; "
                                   "import: read the human_supported column back into the store (the report then shows "
                                   "verifier-human agreement and kappa).")
    audit_sub = p.add_subparsers(dest="audit_command", metavar="ACTION")
    audit_sub.required = True
    e = audit_sub.add_parser("export", help="write claims to a CSV sheet for human review",
                             description="Sample N claims of TASK's latest runs (the hallucination scorer's claims) into a CSV with an empty "
                                         "human_supported column to fill with yes or no.")
    e.add_argument("--task", required=True, help="a generation task that uses the hallucination scorer")
    e.add_argument("--variant", action="append", help="only this variant; repeatable (default: all)")
    e.add_argument("-n", type=_positive, default=100, help="claims to sample (default 100)")
    e.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    e.add_argument("--out", type=Path, required=True, help="CSV file to write")
    _store_arg(e)
    e.set_defaults(func=cmd_audit_export)
    i = audit_sub.add_parser("import", help="read human labels from a filled-in sheet",
                             description="Read SHEET (from `harness audit export`, human_supported filled with yes/no; blank rows are "
                                         "skipped) into the store. All rows are checked before anything is written.")
    i.add_argument("sheet", type=Path)
    _store_arg(i)
    i.set_defaults(func=cmd_audit_import)

    p = sub.add_parser("outcomes", help="online outcomes of published drafts: import per-post engagement and edits",
                       description="import FILE: per-post outcomes (CSV with a header, or JSONL): variant, item_id, impressions, "
                                   "likes, reposts, replies, used (yes/no: used without heavy edits), edit_seconds, draft, "
                                   "published. Every row is checked first (known variant, counts >= 0); a bad row is exit 2 "
                                   "naming its line and field, and nothing is written. The report then shows each variant's "
                                   "engagement rate and edits with intervals, the lift its test can detect, and which offline "
                                   "metric predicts the online outcome.")
    outcomes_sub = p.add_subparsers(dest="outcomes_command", metavar="ACTION")
    outcomes_sub.required = True
    o = outcomes_sub.add_parser("import", help="read per-post outcomes from FILE into the store",
                                description="Read per-post outcomes from FILE (CSV or JSONL) into the store; re-importing a file "
                                            "replaces its rows.")
    o.add_argument("file", type=Path, help="outcomes file (.csv with a header row, or .jsonl)")
    _store_arg(o)
    o.set_defaults(func=cmd_outcomes_import)

    p = sub.add_parser("review", help="rubric review sheets: a person scores sampled outputs on the checks",
                       description="export: write a seeded random sample of outputs of a rubric-scored task, with each check's "
                                   "automatic verdict (auto_<check>) and an empty human_<check> column, plus a rating_<dimension> column "
                                   "(1-10) per judged dimension of the rubric, to CSV; import: read the human verdicts and "
                                   "ratings back (the report then shows per-check agreement with the automatic checks, and the "
                                   "person's ratings beside an LLM judge's).")
    review_sub = p.add_subparsers(dest="review_command", metavar="ACTION")
    review_sub.required = True
    e = review_sub.add_parser("export", help="write sampled outputs to a CSV sheet for human rubric review",
                              description="Sample N outputs of TASK's latest runs into a CSV with auto_<check> and empty "
                                          "human_<check> columns (fill with yes or no), and an empty rating_<dimension> column "
                                          "per judged dimension of the rubric (fill with 1-10).")
    e.add_argument("--task", required=True, help="a generation task that uses the rubric scorer")
    e.add_argument("--variant", action="append", help="only this variant; repeatable (default: all)")
    e.add_argument("-n", type=_positive, default=50, help="outputs to sample (default 50, as the chapter reviews)")
    e.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    e.add_argument("--out", type=Path, required=True, help="CSV file to write")
    _store_arg(e)
    e.set_defaults(func=cmd_review_export)
    i = review_sub.add_parser("import", help="read human rubric verdicts from a filled-in sheet",
                              description="Read SHEET (from `harness review export`, human_<check> cells filled with yes/no, "
                                          "rating_<dimension> cells with 1-10; blank cells are skipped) into the store. "
                                          "All rows are checked before anything is written.")
    i.add_argument("sheet", type=Path)
    _store_arg(i)
    i.set_defaults(func=cmd_review_import)

    p = sub.add_parser("flips", help="the items one variant got right and another wrong, side by side",
                       description="Compare the latest runs of two variants on TASK item by item: the items that went from pass "
                                   "to fail and from fail to pass (0/1 metrics), or got most worse and most better (continuous "
                                   "metrics), most informative first (the largest change; for multiple choice, then the largest "
                                   "move of the gold option's probability), with the input and both outputs.")
    p.add_argument("task", help="a task name, as stored")
    p.add_argument("--from", dest="before", required=True, metavar="VARIANT", help="the variant before (e.g. the parent)")
    p.add_argument("--to", dest="after", required=True, metavar="VARIANT", help="the variant after")
    p.add_argument("--metric", help="per-item metric (default: the task's first)")
    p.add_argument("-n", type=_positive, default=5, help="items shown per direction (default 5)")
    _store_arg(p)
    p.set_defaults(func=cmd_flips)

    p = sub.add_parser("view", help="browse the store in a local web app: runs, tasks, items side by side, lineage",
                       description="Serve a read-only web app over the store and open it in the browser: every run with its "
                                   "provenance; each task's metric table with intervals, each cell linked to its items; items "
                                   "filtered by variant, value, flip, category, contamination, judge order disagreement or text; "
                                   "one item with every variant's output diffed word by word against a baseline, its scores, "
                                   "judge replies and audited claims; the lineage with each step's deltas. Every page has a "
                                   "stable URL to paste into a review. The store is opened per request and never written, so "
                                   "runs go on while you browse.")
    p.add_argument("--port", type=int, default=8765, help="port to listen on (default 8765; 0: any free port)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser tab")
    _store_arg(p)
    p.set_defaults(func=cmd_view)

    p = sub.add_parser("export", help="snapshot the store as Parquet files, or write lm-eval results files",
                       description="Write every table of the store as Parquet files into DIR, from one consistent read "
                                   "(well under a second), with DuckDB's schema.sql and load.sql. Query the snapshot with "
                                   "any tool, e.g. duckdb -c \"SELECT * FROM 'DIR/scores.parquet'\", or rebuild a store "
                                   "from it with IMPORT DATABASE 'DIR'. A SQL session on the store itself holds it while "
                                   "open, and a harness run waits to commit until it closes; a snapshot holds nothing. "
                                   "--format lm-eval writes lm-eval's results layout instead: DIR/<variant>/results_<date>.json "
                                   "(results, groups, configs, versions, n-shot, n-samples) and samples_<task>_<date>.jsonl "
                                   "per task, from each variant's latest runs, for tools built to read lm-eval's output.")
    p.add_argument("dir", type=Path, help="directory to create (must not exist, or be empty)")
    p.add_argument("--format", choices=["parquet", "lm-eval"], default="parquet", help="parquet (default): the whole store; "
                   "lm-eval: lm-eval's results and samples files")
    p.add_argument("--variant", action="append", metavar="NAME", help="--format lm-eval: only this variant (repeatable; default: all)")
    _store_arg(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("card", help="write a Hugging Face model card for a variant from its stored results (--push uploads it)",
                       description="Write README.md, a Hugging Face model card, for VARIANT from its latest runs: `model-index` "
                                   "results (task, dataset, metric, value) that the Hub shows, each figure with its interval and "
                                   "n in the body, the lineage and build facts, and with --report the gate's verdicts on the "
                                   "variant. --push REPO uploads the card and the variant's built files to the Hub (private "
                                   "unless --public; needs network, HF_HUB_OFFLINE=0 and a token); --dry-run lists them.")
    p.add_argument("variant", help="a variant with runs in the store")
    p.add_argument("--out", type=Path, help="directory for README.md (default: .harness/cards/VARIANT next to the store)")
    p.add_argument("--report", type=Path, help="a report file whose gate rules on the variant are decided and listed")
    p.add_argument("--base-model", metavar="HUB_ID", help="the Hub id of the base model (the card's base_model), e.g. google/gemma-3-270m")
    p.add_argument("--push", metavar="REPO", help="upload the card and the variant's files to this Hub repository")
    p.add_argument("--public", action="store_true", help="with --push: create the repository public (default: private)")
    p.add_argument("--dry-run", action="store_true", help="with --push: list what would be uploaded, upload nothing")
    _store_arg(p)
    p.set_defaults(func=cmd_card)

    p = sub.add_parser("store", help="check, back up or merge stores, or rebuild one from a snapshot",
                       description="The store's file itself: check that it reads whole, back it up while readers go "
                                   "on, combine results that several machines or CI jobs wrote into their own stores, "
                                   "or rebuild one from a snapshot. Sources are only read (runs and readers on them go "
                                   "on); a target must be new.")
    store_sub = p.add_subparsers(dest="store_command", metavar="ACTION")
    m = store_sub.add_parser("merge", help="merge stores into a new one: runs deduplicated by key, conflicts reported",
                             description="Copy every run of the sources into a new store, in the order given. A run with "
                                         "the same run key and variant as one already taken is a duplicate and left out; "
                                         "when the two copies' scores differ (a timed task), that is reported as a "
                                         "conflict and the first copy is kept. Variants, the judge cache and noise bands "
                                         "are merged by key; checkpoints (unfinished work) are not.")
    m.add_argument("sources", type=Path, nargs="+", metavar="STORE", help="stores to merge (.duckdb files)")
    m.add_argument("--into", type=Path, required=True, help="the new store to write (must not exist)")
    m.set_defaults(func=cmd_store_merge)
    i = store_sub.add_parser("import", help="rebuild a store from a `harness export` snapshot",
                             description="Rebuild a store from the Parquet snapshot `harness export` wrote (DuckDB's "
                                         "IMPORT DATABASE), brought to this harness's schema.")
    i.add_argument("snapshot", type=Path, help="the directory `harness export` wrote")
    i.add_argument("--into", type=Path, required=True, help="the new store to write (must not exist)")
    i.set_defaults(func=cmd_store_import)
    c = store_sub.add_parser("check", help="read every row of every table; exit 2 'store is damaged' when one fails",
                             description="Read the store in full (every table, every row, every block's checksum) and "
                                         "compare the file's length with what its header declares. Exit 0 when it is "
                                         "whole, 2 when it is damaged, naming the tables that no longer read.")
    _store_arg(c)
    c.set_defaults(func=cmd_store_check)
    b = store_sub.add_parser("backup", help="write a consistent copy of the store to a new file while readers go on",
                             description="Copy the store from one read-only snapshot into a new DuckDB file (written "
                                         "under a temporary name, read back in full, then renamed). Readers go on "
                                         "meanwhile; a run's next commit waits for the copy. A damaged store is refused.")
    b.add_argument("out", type=Path, help="the new file to write (must not exist)")
    _store_arg(b)
    b.set_defaults(func=cmd_store_backup)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    p = sub.add_parser("sql", help="your own read-only SQL on the store; waits out a run's commit instead of failing",
                       description="Run one SQL query on a read-only connection to the store and print the rows. "
                                   "While a run commits (well under a second at a time) the query waits for it "
                                   "instead of failing with a lock conflict, as a plain duckdb.connect(read_only=True) "
                                   "can; HARNESS_STORE_WAIT_S bounds the wait. Tables: runs, samples, scores, "
                                   "judgments, variants, run_stats, ... (`harness sql \"SHOW TABLES\"`).")
    p.add_argument("query", help="one SQL statement (reads only: the connection is read-only)")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table", help="how to print the rows (default table)")
    _store_arg(p)
    p.set_defaults(func=cmd_sql)

    p = sub.add_parser("list", help="list variants, runs or registered components",
                       description="List what the store holds (variants with lineage, runs) or what is registered "
                                   "(scorers with their metrics, every declared metric, backends, recipes, loaders, task kinds).")
    p.add_argument("what", choices=["variants", "runs", "scorers", "metrics", "backends", "recipes", "loaders", "task_kinds"])
    p.add_argument("--json", action="store_true", help="print JSON (variants and runs: their stored rows; components: name and target)")
    _store_arg(p)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("schema", help="the reference of every suite, models and report key (and environment variable)",
                       description="Print the reference of every key the suite, models and report files take, generated "
                                   "from the models that parse them. --out writes it to a file; --check exits 1 when the "
                                   "file differs from what would be written (CI keeps docs/reference.md current with it).")
    p.add_argument("--out", type=Path, help="write to this file (e.g. docs/reference.md) instead of printing")
    p.add_argument("--check", action="store_true", help="with --out: compare instead of writing; exit 1 when out of date")
    p.add_argument("--json-schema", type=Path, metavar="DIR", help="instead: write suite/models/report.schema.json (JSON Schema, "
                   "for editors) into DIR")
    p.set_defaults(func=cmd_schema)
    return parser


def cmd_schema(args) -> int:
    from harness.config.schema import render
    from harness.errors import ConfigError

    if args.json_schema is not None:
        from harness.config.starter import write_schemas

        if args.out or args.check:
            raise ConfigError("--json-schema writes its own files: leave out --out and --check")
        for path in write_schemas(args.json_schema):
            print(f"wrote {path}")
        return 0
    text = render()
    if args.check:
        if args.out is None:
            raise ConfigError("--check compares with a file: give --out PATH")
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else None
        if current != text:
            print(f"{args.out} is out of date: run `harness schema --out {args.out}`")
            return 1
        print(f"{args.out} is current")
        return 0
    if args.out is None:
        sys.stdout.write(text)
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


MODEL_PACKAGES = frozenset({"torch", "transformers", "tokenizers", "safetensors"})
"""The `models` extra: a command that needs one of these says which extra to install."""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from harness.progress import setup_logging

    setup_logging(args.verbose)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from harness.errors import HarnessError

    try:
        return int(args.func(args) or 0)
    except HarnessError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"Hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except ModuleNotFoundError as exc:
        root = (exc.name or "").split(".")[0]
        if root not in MODEL_PACKAGES:
            raise
        # The core install reads and writes stores; loading a model needs the `models` extra.
        print(f"Error: `harness {args.command}` needs the package '{root}' to work with models, and it is not installed",
              file=sys.stderr)
        print("Hint: pip install 'harness[models]' (the core install validates files and reads and writes stores only)",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed: not an error of ours
        sys.stderr.close()
        return 0
    except OSError as exc:  # after BrokenPipeError (an OSError too): a path the system refuses (too long, no permission)
        # that no check caught is still the user's to fix, with its name, not a traceback
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"Error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2


# -- commands ---------------------------------------------------------------------------------

def cmd_init(args) -> int:
    from harness.config.starter import init_workspace
    from harness.run.oneoff import parse_model

    oneoff = parse_model(args.model)
    written = init_workspace(args.dir, oneoff.evaluate, oneoff.models, args.force)
    for path in written:
        print(f"wrote {path}")
    models = "models/model.yaml"
    print(f"next, in {args.dir}:\n  harness validate\n"
          + (f"  harness build {models}\n" if oneoff.needs_build else "")
          + f"  harness run suites/starter.yaml --models {models}\n  harness report reports/starter.yaml\n"
            "  harness gate reports/starter.yaml")
    return 0


def cmd_validate(args) -> int:
    from harness.run.validate import validate_paths

    paths = args.paths or [p for p in (Path("suites"), Path("models"), Path("reports")) if p.exists()]
    results = validate_paths(paths)
    failed = 0
    for path, kind, error in results:
        if error:
            failed += 1
            print(f"FAIL {path} ({kind})\n  {error.replace(chr(10), chr(10) + '  ')}")
        else:
            print(f"ok   {path} ({kind})")
    print(f"{len(results) - failed} valid, {failed} invalid")
    return 2 if failed else 0


def cmd_build(args) -> int:
    from harness.run.build import build_models

    outcomes = build_models(args.models, args.store, args.variant, args.force)
    for o in outcomes:
        print(f"{o.name}: {'reused' if o.reused else 'built'} {o.key} ({o.wall_s:.0f}s) {o.artifact_path}")
    if not outcomes:
        print("nothing to build: the models file declares no variants")
    return 0


def _log_to(trackers: list[str], entries, store_path: Path, say) -> None:
    """Record `entries(store)` in each tracker (after the results are stored)."""
    from harness.interop.trackers import log as log_entries
    from harness.store.db import open_store

    with open_store(store_path, read_only=True) as store:
        made = entries(store)
    for tracker in trackers:
        for where in log_entries(tracker, made, store_path.parent):
            say(f"logged to {where}")


def _run_models(args) -> tuple[Path | None, list[str] | None, object]:
    """--models, or the one-off --model written as a models file (its adapter built first), and
    the run-time overrides; every check before anything is evaluated."""
    from harness.errors import ConfigError
    from harness.run.oneoff import Overrides, parse_gen_kwargs, parse_model, write_models

    batch: int | None = None
    if args.batch_size is not None and args.batch_size != "auto":
        batch = int(args.batch_size) if args.batch_size.isdigit() else 0
        if batch < 1:
            raise ConfigError(f"--batch-size {args.batch_size}: expected a whole number >= 1 or auto")
    if args.num_fewshot is not None and args.num_fewshot < 0:
        raise ConfigError(f"--num-fewshot {args.num_fewshot}: must be at least 0")
    overrides = Overrides(args.seed, args.num_fewshot, parse_gen_kwargs(args.gen_kwargs or ""), batch)
    if overrides:
        log.info("overrides for every suite: %s (stored with each run's task config)", overrides.words())
    if args.model is None:
        if args.batch_size == "auto":
            raise ConfigError("--batch-size auto goes with --model; in a models file, set the model's options: {batch_size: auto}")
        return args.models, args.variant, overrides
    if args.models is not None or args.variant:
        raise ConfigError("--model names one model to evaluate: leave out --models and --variant")
    spec = args.model + (",batch_size=auto" if args.batch_size == "auto" else "")
    oneoff = parse_model(spec)
    from harness.config.suite import load_suite

    for suite in args.suites:  # the suites are known good before the models file is written or an adapter built
        overrides.apply(load_suite(suite), str(suite))
    path = write_models(oneoff, args.store)
    log.info("--model %s: written as %s", args.model, path)
    if oneoff.needs_build:  # the adapter is copied into the store's artifacts
        from harness.run.build import build_models

        build_models(path, args.store, [oneoff.evaluate])
    return path, [oneoff.evaluate], overrides


def cmd_run(args) -> int:
    from harness.analysis.metrics import summarize
    from harness.data.answers import parse_answers_arg
    from harness.errors import ConfigError
    from harness.run.distributed import DEFAULT_SHARD_ITEMS, RayOptions
    from harness.run.evaluate import run_suites
    from harness.store.db import open_store

    if args.shard_items is not None and args.ray is None:
        raise ConfigError("--shard-items: only with --ray (one process evaluates every item of a task in its own batches)")
    ray = None
    if args.ray is not None:
        ray = RayOptions(None if args.ray == "local" else args.ray, args.shard_items or DEFAULT_SHARD_ITEMS)
    trackers = list(dict.fromkeys(args.log or []))
    if trackers:
        from harness.interop.trackers import check

        check(trackers)  # a missing client or login is exit 2 before anything is evaluated
    models, variants, overrides = _run_models(args)
    if args.budget_items is not None and args.until_decided is None:
        raise ConfigError("--budget-items: only with --until-decided REPORT")
    if args.until_decided is not None:
        return _run_until_decided(args, models, overrides)
    outcomes = run_suites(args.suites, models, args.store, variants, args.force, args.limit,
                          parse_answers_arg(args.answers), ray, overrides)
    variants = list(dict.fromkeys(o.variant for o in outcomes))
    run_ids = [o.run_id for o in outcomes]
    with open_store(args.store, read_only=True) as store:
        rows = summarize(store, variants, run_ids=run_ids)
        unhealthy = store.query("""SELECT r.run_id, r.variant, r.task, s.warning FROM run_stats s JOIN runs r USING (run_id)
                                   WHERE list_contains(?, r.run_id) AND s.warning IS NOT NULL ORDER BY r.variant, r.task""", [run_ids])
    flagged = {x["run_id"] for x in unhealthy}
    # with --json, stdout is one JSON document; what is said besides it goes to stderr
    say = (lambda text: print(text, file=sys.stderr)) if args.json else print
    if args.json:
        print(json.dumps({"store": str(args.store), "partial": args.limit is not None,
                          "figures": [{"variant": r.variant, "suite": r.suite, "task": r.task, "metric": r.metric,
                                       "mean": _finite(r.estimate.mean), "low": _finite(r.estimate.low), "high": _finite(r.estimate.high),
                                       "n": r.estimate.n, "confidence": 0.95, "run_id": r.run_id,
                                       "judge_health_warning": r.run_id in flagged} for r in rows],
                          "judge_health": unhealthy}, indent=2))
    else:
        print(f"{'variant':24} {'task':22} {'metric':12} mean [95% CI] (n)")
        for r in rows:
            print(f"{r.variant:24} {r.task:22} {r.metric:12} {r.estimate.fmt()}"
                  + ("  ! judge health (below)" if r.run_id in flagged and r.metric not in ("unjudged", "inconsistent") else ""))
        if unhealthy:
            print("judge health: the judged figures marked ! may not mean what they say:")
            for x in unhealthy:
                print(f"  {x['variant']} / {x['task']}: {x['warning']}")
    say(f"stored in {args.store}")
    if trackers:
        from harness.interop.trackers import run_entries

        _log_to(trackers, lambda store: run_entries(store, run_ids), args.store, say)
    if args.limit is not None:
        say(f"--limit {args.limit}: a seeded random sample of each task, recorded as partial runs; "
            "reports and gates keep reading full runs where one is stored")
    failed: dict[str, int] = {}
    for o in outcomes:
        for kind, n in o.failed_calls.items():
            failed[kind] = failed.get(kind, 0) + n
    if failed:
        kinds = ", ".join(f"{k}: {n}" for k, n in sorted(failed.items(), key=lambda kv: -kv[1]))
        print(f"Error: {sum(failed.values())} judge calls failed after their retries ({kinds}); their items are stored as "
              "unjudged, the answered calls are cached", file=sys.stderr)
        print("Hint: run the same command again: it asks exactly the failed calls again", file=sys.stderr)
        return 1
    return 0


def _run_until_decided(args, models, overrides) -> int:
    from harness.config.report import load_report
    from harness.errors import ConfigError
    from harness.run.sequential import FIRST, run_until_decided
    from harness.run.sequential import exit_code as sequential_exit

    for flag, value in (("--limit", args.limit), ("--ray", args.ray), ("--answers", args.answers), ("--variant", args.variant),
                        ("--json", args.json or None), ("--log", args.log)):
        if value:
            raise ConfigError(f"--until-decided: {flag} does not apply (the report's rules name the variants; the sample grows by itself)")
    if args.budget_items is not None and args.budget_items < 1:
        raise ConfigError(f"--budget-items must be at least 1 (got {args.budget_items})")
    spec = load_report(args.until_decided)
    steps = run_until_decided(args.suites, models, args.store, spec, str(args.until_decided),
                              args.budget_items or 10 ** 9, FIRST, args.force, overrides)
    last = steps[-1]
    print(f"\nsequential gate ({len(steps)} steps, anytime-valid one-sided {1 - spec.statistics.alpha:.0%} bounds):")
    for v in last.verdicts:
        b = v.bound
        where = (f"mean {b.mean:.4g}, bounds [{b.low:.4g}, {b.high:.4g}] vs {v.threshold:g} after {b.n} items"
                 if b is not None else v.reason)
        more = f"; {v.reason}" if v.status == "inconclusive" else ""
        if v.status == "inconclusive":
            more += f"; about {v.needed} items would decide a gap this size" if v.needed else "; no practical number of items decides it"
        print(f"  {v.status.upper():13} {v.label}: {where}{more}")
    code = sequential_exit(last.verdicts)
    print(f"stored in {args.store} (the last step's runs: {last.n} items per task); exit code {code}")
    return code


def cmd_load(args) -> int:
    from dataclasses import replace

    from harness.run.evaluate import run_suites
    from harness.store.db import open_store

    models, variants, overrides = _run_models(args)
    slo = {k: v for k, v in (("latency_ms", args.slo_ms), ("percentile", args.percentile)) if v is not None}
    load = {k: v for k, v in (("rates", args.rates), ("requests_per_rate", args.requests)) if v is not None}
    overrides = replace(overrides, load={**load, **({"slo": slo} if slo else {})}, only_types=("load",))
    outcomes = run_suites(args.suites, models, args.store, variants, overrides=overrides)
    with open_store(args.store, read_only=True) as store:
        rows = store.query("""SELECT r.variant, r.task, s.metric, s.value, s.low, s.high, s.warning FROM run_stats s JOIN runs r USING (run_id)
                              WHERE list_contains(?, r.run_id) ORDER BY r.variant, r.task, s.metric""", [[o.run_id for o in outcomes]])
    if args.json:
        print(json.dumps({"store": str(args.store), "figures": [{**r, "value": _finite(r["value"]), "low": _finite(r["low"]),
                                                                 "high": _finite(r["high"])} for r in rows]}, indent=2, default=str))
        return 0
    from harness.tasks.kinds.load import capacity_lines

    for (variant, task) in dict.fromkeys((r["variant"], r["task"]) for r in rows):
        print(f"{variant} / {task} (percentiles with two-sided 95% intervals from order statistics, +inf: too few requests "
              "to bound that tail; the SLO is decided on one-sided 95% bounds, as the gate decides a percentile rule)")
        for line in capacity_lines([r for r in rows if (r["variant"], r["task"]) == (variant, task)]):
            print(f"  {line}")
    print(f"stored in {args.store}")
    return 0


def cmd_ship(args) -> int:
    from harness.config.sweep import load_sweep
    from harness.run.ship import exit_code, ship, table

    sweep = load_sweep(args.sweep)
    candidates, choice = ship(sweep, args.sweep, args.store, args.budget_mb, args.min_tokens_per_s)
    for line in table(sweep, candidates, choice):
        print(line)
    code = exit_code(candidates, choice)
    print(f"ship: {choice.name if choice else 'nothing'}; exit code {code}")
    return code


def cmd_noise(args) -> int:
    from harness.run.noise import DEFAULT_LIMIT, measure_noise

    limit = args.limit or DEFAULT_LIMIT
    result = measure_noise(args.suites, args.models, args.store, args.variant, limit,
                           on_setting=lambda label: print(f"{args.variant}: evaluating with {label}", flush=True))
    print(f"{'task':22} {'metric':22} {'declared':>9} {'band':>9}  settings (mean)")
    for r in result.rows:
        spread = ", ".join(f"{k}: {v:.4f}" for k, v in json.loads(r.by_setting).items())
        print(f"{r.task:22} {r.metric:22} {r.reference:9.4f} {'±' + format(r.band, '.4f'):>9}  {spread}  (n={r.n_items})")
    print(f"noise bands of {args.variant} stored in {args.store} ({len(result.settings)} settings, up to {limit} items per task); "
          "`harness gate` marks rules inside them")
    return 0


def cmd_report(args) -> int:
    from harness.config.report import load_report
    from harness.report.render import write_report
    from harness.report.view import build_view
    from harness.store.db import open_store

    spec = load_report(args.report)
    trackers = list(dict.fromkeys(args.log or []))
    if trackers:
        from harness.interop.trackers import check

        check(trackers)
    with open_store(args.store, read_only=True) as store:
        view = build_view(store, spec, str(args.report))
    out = args.out or args.store.parent / "reports" / f"{args.report.stem}.html"
    try:
        write_report(view, out)
    except OSError as exc:
        from harness.errors import ConfigError

        raise ConfigError(f"{out}: cannot write the report: {exc.strerror or exc}", hint="--out takes a file path") from None
    for w in view.coverage:
        print(f"warning: {w}")
    print(f"report written to {out}")
    if trackers:
        from harness.interop.trackers import report_entry
        from harness.report.gate import evaluate_gate

        _log_to(trackers, lambda store: [report_entry(store, spec, args.report, out, evaluate_gate(store, spec) if spec.gate else None)],
                args.store, print)
    return 0


def cmd_gate(args) -> int:
    from harness.config.report import load_report
    from harness.errors import ConfigError
    from harness.report.gate import evaluate_gate
    from harness.report.gate_output import paint, terminal_line, to_json, to_junit, to_markdown, use_colour
    from harness.store.db import open_store

    spec = load_report(args.report)
    if not spec.gate:
        raise ConfigError(f"{args.report}: no gate rules",
                          hint="add a `gate:` list, e.g. - {variant: my-sft, task: mmlu, metric: acc, baseline: base, max_drop: 0.02}")
    with open_store(args.store, read_only=True) as store:
        if args.tag:  # a tag that can't be set is exit 2 before any verdict or file is written
            from harness.store.tags import check_new_tag

            check_new_tag(store, args.tag)
        result = evaluate_gate(store, spec)
    colour = use_colour(sys.stdout)
    for v in result.verdicts:
        print(terminal_line(v, colour))
    for w in result.warnings:
        print(f"warning: {w}")
    code = result.exit_code(args.inconclusive)
    counts = {s: sum(v.status == s for v in result.verdicts) for s in ("pass", "fail", "inconclusive", "error")}
    st = spec.statistics
    print(f"gate: {paint(result.status.upper(), result.status, colour)} ({', '.join(f'{n} {s}' for s, n in counts.items() if n)}; "
          f"alpha {st.alpha}, {'Holm-adjusted' if st.multiplicity == 'holm' else 'no multiplicity correction'}); exit code {code}")
    title = f"Gate: {spec.title}"
    outputs = [(args.junit, lambda: to_junit(result, spec.title), False),
               (args.markdown, lambda: to_markdown(result, title), False),
               (args.json, lambda: to_json(result, code, st.alpha, st.multiplicity), False)]
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        outputs.append((Path(os.environ["GITHUB_STEP_SUMMARY"]), lambda: to_markdown(result, title), True))
    for path, text, append in outputs:
        if path is not None:
            _write(path, text(), append)
    if args.tag:
        if code == 0:
            _tag_report(args.store, spec, args.tag, None, None, False)
        else:
            print(f"not tagged {args.tag}: the gate did not pass")
    return code


def cmd_tag(args) -> int:
    from harness.config.report import load_report
    from harness.errors import ConfigError
    from harness.store.db import open_store
    from harness.store.tags import tags

    if args.report is None:
        with open_store(args.store, read_only=True) as store:
            found = tags(store)
        for t in found:
            print(f"{t['tag']:24} {t['runs']:>5} runs  tagged {t['tagged_at']:%Y-%m-%d %H:%M}")
        if not found:
            print("no tags yet: harness tag REPORT TAG")
        return 0
    if args.tag is None:
        raise ConfigError("harness tag REPORT TAG: give the tag too")
    spec = load_report(args.report)
    unknown = sorted(set(args.variant or []) - set(spec.variants))
    if unknown:
        raise ConfigError(f"--variant {', '.join(unknown)}: not a variant of {args.report} ({', '.join(spec.variants)})")
    _tag_report(args.store, spec, args.tag, args.variant, args.task, args.force)
    return 0


def _tag_report(store_path: Path, spec, tag: str, variants: list[str] | None, tasks: list[str] | None, force: bool) -> None:
    from harness.store.db import open_store
    from harness.store.tags import tag_runs

    with open_store(store_path) as store:
        runs = tag_runs(store, tag, variants or spec.variants, tasks or spec.tasks, force)
    names = sorted({r["variant"] for r in runs})
    print(f"tagged {tag}: {len(runs)} runs of {', '.join(names)}")


def _write(path: Path, text: str, append: bool = False) -> None:
    from harness.errors import ConfigError
    from harness.report.gate_output import write_text

    try:
        write_text(path, text, append)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write: {exc.strerror or exc}", hint="pass a file path in a writable folder") from None


def cmd_plan(args) -> int:
    from harness.config.report import load_report
    from harness.report.planning import plan_lines
    from harness.store.db import open_store

    spec = load_report(args.report)
    with open_store(args.store, read_only=True) as store:
        for line in plan_lines(store, spec, args.price_per_hour, str(args.report)):
            print(line)
    return 0


def cmd_audit_export(args) -> int:
    from harness.review.audit import export_sheet
    from harness.store.db import open_store

    with open_store(args.store, read_only=True) as store:
        n = export_sheet(store, args.task, args.out, args.n, args.seed, args.variant)
    print(f"{n} claims written to {args.out}; fill human_supported with yes or no, then `harness audit import {args.out}`")
    return 0


def cmd_audit_import(args) -> int:
    from harness.review.audit import import_sheet
    from harness.store.db import open_store

    with open_store(args.store, create=False) as store:  # labels belong to stored runs: never a new store
        labelled, skipped = import_sheet(store, args.sheet)
    print(f"{labelled} human labels stored ({skipped} blank rows skipped)")
    return 0


def cmd_outcomes_import(args) -> int:
    from harness.review.outcomes import import_outcomes
    from harness.store.db import open_store

    with open_store(args.store, create=False) as store:  # labels belong to stored runs: never a new store
        n = import_outcomes(store, args.file)
    print(f"{n} posts' outcomes stored from {args.file}; `harness report` shows them per variant")
    return 0


def cmd_review_export(args) -> int:
    from harness.review.rubric import export_review
    from harness.store.db import open_store

    with open_store(args.store, read_only=True) as store:
        n = export_review(store, args.task, args.out, args.n, args.seed, args.variant)
    print(f"{n} outputs written to {args.out}; fill the human_<check> columns with yes or no (and any rating_<dimension> "
          f"with 1-10), then `harness review import {args.out}`")
    return 0


def cmd_review_import(args) -> int:
    from harness.review.rubric import import_review
    from harness.store.db import open_store

    with open_store(args.store, create=False) as store:  # labels belong to stored runs: never a new store
        labelled, skipped = import_review(store, args.sheet)
    print(f"{labelled} human verdicts and ratings stored ({skipped} blank cells skipped)")
    return 0


def cmd_flips(args) -> int:
    import json

    from harness.analysis.flips import item_flips
    from harness.store.db import open_store

    with open_store(args.store, read_only=True) as store:
        metric = args.metric
        if metric is None:
            rows = store.query("SELECT metrics FROM latest_runs WHERE variant = ? AND task = ?", [args.after, args.task])
            metric = (json.loads(rows[0]["metrics"]) or [None])[0] if rows else "acc"
        result = item_flips(store, args.task, args.before, args.after, metric)
    print(result.words())

    def short(text, width=110, tail=False):
        text = " ".join((text or "").split())
        if len(text) <= width:
            return text
        return "..." + text[-(width - 3):] if tail else text[: width - 3] + "..."

    for title, items in ((("pass -> fail" if result.binary else "worse"), result.worse),
                         (("fail -> pass" if result.binary else "better"), result.better)):
        print(f"\n{title} ({len(items)}):")
        for f in items[: args.n]:
            shift = f", gold option p {f.gold_shift:+.2f}" if f.gold_shift is not None else ""
            print(f"  {f.sample_id}: {result.metric} {f.before[1]:g} -> {f.after[1]:g}{shift}")
            if f.prompt:
                print(f"    input:  {short(f.prompt, 150, tail=True)}")  # the end of the prompt: the item, not the few-shot preamble
            if f.reference is not None:
                print(f"    reference: {short(f.reference)}")
            print(f"    {args.before}: {short(f.before[0])}")
            print(f"    {args.after}: {short(f.after[0])}")
    return 0


def cmd_store_merge(args) -> int:
    from harness.store.merge import merge_stores

    reports = merge_stores(args.sources, args.into)
    for r in reports:
        rows = ", ".join(f"{n} {t}" for t, n in r.rows_added.items() if n)
        print(f"{r.path}: {r.runs_added} run(s) added, {r.runs_duplicate} duplicate(s) left out"
              + (f", {len(r.conflicts)} conflict(s)" if r.conflicts else "") + (f" ({rows})" if rows else ""))
        for c in r.conflicts:
            print(f"  conflict: {c}", file=sys.stderr)
    print(f"merged {len(reports)} store(s) into {args.into}")
    return 0


def cmd_store_import(args) -> int:
    from harness.store.merge import import_snapshot

    tables = import_snapshot(args.snapshot, args.into)
    print(f"{args.into}: rebuilt from {args.snapshot} ({len(tables)} tables)")
    return 0


def cmd_store_check(args) -> int:
    from harness.store.db import duckdb_config, wait_seconds
    from harness.store.integrity import DAMAGED_HINT, check_store
    from harness.store.journal import Journal, journal_path

    result = check_store(args.store, wait_seconds(), duckdb_config())
    journal = journal_path(args.store)
    if journal.is_file():
        print(f"note: {journal.name} holds work an interrupted run finished but never committed "
              f"({len(Journal(args.store).records())} records); the next run or build on this store takes it in")
    for t in result.tables:
        print(f"{'ok     ' if t.error is None else 'DAMAGED'} {t.table:22} " + (f"{t.rows:,} rows" if t.error is None else t.error))
    if result.ok:
        print(f"{args.store}: whole ({len(result.tables)} tables, {sum(t.rows or 0 for t in result.tables):,} rows read)")
        return 0
    bad = [t.table for t in result.tables if t.error]
    print(f"Error: {args.store}: store is damaged ({result.problem or 'tables that no longer read: ' + ', '.join(bad)})", file=sys.stderr)
    print(f"Hint: {DAMAGED_HINT}", file=sys.stderr)
    return 2


def cmd_store_backup(args) -> int:
    from harness.store.db import duckdb_config, wait_seconds
    from harness.store.integrity import backup_store

    copy = backup_store(args.store, args.out, wait_seconds(), duckdb_config())
    print(f"{args.out}: backup of {args.store} ({len(copy.tables)} tables, {sum(t.rows or 0 for t in copy.tables):,} rows, read back whole)")
    return 0


def cmd_sql(args) -> int:
    import csv
    import json

    import duckdb

    from harness.errors import ConfigError
    from harness.store.db import open_store

    with open_store(args.store, read_only=True) as store:
        try:
            cols, rows = store.read_sql(args.query)
        except duckdb.Error as exc:  # the user's SQL: DuckDB's parser and binder errors are input errors
            raise ConfigError(f"query: {str(exc).splitlines()[0]}", hint="check the SQL; `harness sql \"SHOW TABLES\"` lists the tables") from None
    if args.format == "json":
        print(json.dumps([dict(zip(cols, r)) for r in rows], default=str, indent=1))
    elif args.format == "csv":
        w = csv.writer(sys.stdout)
        w.writerow(cols)
        w.writerows(rows)
    else:
        shown = [[("" if v is None else str(v)) for v in r] for r in rows]
        widths = [min(40, max([len(c)] + [len(r[i]) for r in shown])) for i, c in enumerate(cols)]
        print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
        for r in shown:
            print("  ".join(v[:40].ljust(w) for v, w in zip(r, widths)))
        print(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return 0


def cmd_view(args) -> int:
    from harness.errors import ConfigError
    from harness.viewer.serve import serve

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port}: expected a port from 0 to 65535")
    serve(args.store, args.host, args.port, open_browser=not args.no_browser)
    return 0


def cmd_card(args) -> int:
    from harness.errors import ConfigError
    from harness.interop.model_card import build_card, describe, push, upload_plan, write_card
    from harness.store.db import open_store

    if (args.dry_run or args.public) and not args.push:
        raise ConfigError("--dry-run and --public go with --push REPO")
    spec = verdicts = None
    if args.report:
        from harness.config.report import load_report

        spec = load_report(args.report)
    with open_store(args.store, read_only=True) as store:
        if spec is not None:
            from harness.report.gate import evaluate_gate

            verdicts = [v for v in evaluate_gate(store, spec).verdicts if v.rule.variant == args.variant] if spec.gate else []
        card = build_card(store, args.variant, verdicts, spec.title if spec else None, args.base_model)
    path = write_card(card, args.out or args.store.parent / "cards" / args.variant)
    print(f"model card written to {path}")
    if args.push:
        plan = upload_plan(path, card)
        if card.artifact is None:
            print(f"note: {args.variant} has no built files on this machine; only the card would be uploaded")
        if args.dry_run:
            print(f"would upload to {args.push} ({'public' if args.public else 'private'}):")
            for line in describe(plan):
                print(f"  {line}")
            return 0
        print(f"uploaded to {push(plan, args.push, private=not args.public)}")
    return 0


def cmd_export(args) -> int:
    from harness.errors import ConfigError
    from harness.store.db import open_store
    from harness.textfile import atomic_target

    out: Path = args.dir
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"{out}: {'is a file' if not out.is_dir() else 'exists and is not empty'}",
                          hint="pass a new directory for the export")
    if args.variant and args.format != "lm-eval":
        raise ConfigError("--variant applies to --format lm-eval only (a Parquet snapshot holds the whole store)")
    with atomic_target(out, "export", hint="pass another directory", directory=True) as tmp:
        with open_store(args.store, read_only=True) as store:  # a failed export leaves no half snapshot behind
            if args.format == "lm-eval":
                from harness.interop.lm_eval_results import export

                written = export(store, tmp, args.variant)
            else:
                tables = store.export_parquet(tmp)
    if args.format == "lm-eval":
        for w in written:
            print(f"{w.variant}: {out / w.results.relative_to(tmp)} and {len(w.samples)} samples file(s)")
        return 0
    print(f"{len(tables)} tables written to {out} as Parquet ({', '.join(tables)}); "
          f"e.g. duckdb -c \"SELECT count(*) FROM '{out}/scores.parquet'\"")
    return 0


def _list_json(args) -> int:
    """`harness list WHAT --json`: stored rows (variants, runs) or registered components."""
    from harness import registry

    if args.what in ("variants", "runs"):
        from harness.store.db import open_store

        sql = {"variants": "SELECT * EXCLUDE (train_curve, config) FROM variants ORDER BY created_at, name",
               "runs": "SELECT * EXCLUDE (task_config, suite_tasks) FROM latest_runs ORDER BY suite, task, variant"}[args.what]
        with open_store(args.store, read_only=True) as store:
            rows = store.query(sql)
        for r in rows:  # JSON columns as JSON, not as strings holding JSON
            for k, v in r.items():
                if isinstance(v, str) and v[:1] in "[{":
                    try:
                        r[k] = json.loads(v)
                    except ValueError:
                        pass
        print(json.dumps(rows, indent=2, default=str))
        return 0
    kind = {"scorers": "scorer", "backends": "backend", "recipes": "recipe", "loaders": "loader", "task_kinds": "task_kind"}.get(args.what)
    if kind is None:  # metrics
        from harness.stats.metricspec import declarations

        print(json.dumps([{"name": d.metric.name, "display": d.metric.display, "direction": d.metric.direction,
                           "values": d.metric.values, "level": d.metric.level, "low": d.metric.low, "high": d.metric.high,
                           "declared_by": d.provider} for d in declarations()], indent=2))
        return 0
    print(json.dumps([{"name": n, "target": registry.target(kind, n), "description": getattr(registry.resolve(kind, n), "description", "")}
                      for n in registry.names(kind)], indent=2))
    return 0


def cmd_list(args) -> int:
    from harness import registry

    if args.json:
        return _list_json(args)

    if args.what in ("scorers", "metrics", "recipes", "task_kinds"):
        from harness.report.listing import metric_lines, recipe_lines, scorer_lines, task_kind_lines

        lines = {"scorers": scorer_lines, "metrics": metric_lines, "recipes": recipe_lines, "task_kinds": task_kind_lines}
        for line in lines[args.what]():
            print(line)
        return 0
    if args.what == "backends":
        for name in registry.names("backend"):
            f = registry.resolve("backend", name)
            options = ", ".join(sorted(getattr(f, "options", ()))) or "none"
            print(f"{name:18} {getattr(f, 'description', '')} (options: {options}) [{registry.target('backend', name)}]")
        return 0
    if args.what == "loaders":
        for name in registry.names("loader"):
            print(f"{name:18} {registry.target('loader', name)}")
        return 0
    from harness.store.db import open_store

    with open_store(args.store, read_only=True) as store:
        if args.what == "variants":
            from harness.report.listing import lineage_tree

            for line in lineage_tree(store):
                print(line)
        else:
            rows = store.query("SELECT variant, suite, task, run_id, n_samples, n_items_total, partial, wall_s, started_at "
                               "FROM latest_runs ORDER BY suite, task, variant")
            print(f"{'variant':24} {'suite':16} {'task':22} {'run_id':17} {'n':>5} {'wall':>7}  started")
            for r in rows:
                part = f"  partial: {r['n_samples']} of {r['n_items_total']} items (--limit)" if r["partial"] else ""
                print(f"{r['variant']:24} {r['suite']:16} {r['task']:22} {r['run_id']:17} {r['n_samples']:5d} {r['wall_s']:6.1f}s  "
                      f"{r['started_at']:%Y-%m-%d %H:%M}{part}")
            pending = store.query("SELECT count(DISTINCT run_key) AS runs, count(*) FILTER (WHERE unit <> '__wall_s__') AS units, "
                                  "max(created_at) AS last FROM checkpoints")[0]
            if pending["runs"]:
                print(f"{pending['runs']} task run(s) in progress or interrupted: {pending['units']} finished unit(s) checkpointed, "
                      f"the last at {pending['last']:%Y-%m-%d %H:%M:%S}; running the same command again resumes them")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
