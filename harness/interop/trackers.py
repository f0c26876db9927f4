"""`--log mlflow` / `--log wandb`: each run's metrics with their intervals, the provenance, the
gate's verdicts and the HTML report, recorded in the experiment tracker a team already uses.

Each tracker is configured the way its own client is: MLflow by MLFLOW_TRACKING_URI and
MLFLOW_EXPERIMENT_NAME (default: a local file store `mlruns/` beside the harness store, experiment
`harness`), W&B by WANDB_PROJECT, WANDB_MODE (`offline` writes a local run that `wandb sync`
uploads later) and WANDB_API_KEY. A metric `m` of task `t` is logged as `t/m` (report: `variant/t/m`)
with `t/m.ci_low`, `t/m.ci_high` and `t/m.n` beside it (the interval at the report's confidence,
95% for a run)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from harness import __version__
from harness.analysis.metrics import MetricSummary, summarize
from harness.errors import ConfigError, HarnessError, require
from harness.store.db import Store

TRACKERS = ("mlflow", "wandb")
EXTRAS = {"mlflow": ("mlflow", "mlflow"), "wandb": ("wandb", "wandb")}
"""tracker -> (module, harness extra that installs it)."""


class TrackerError(HarnessError):
    """Logging to a tracker failed after the results were stored (exit 2; the store is complete)."""


@dataclass(frozen=True)
class Entry:
    """One run in the tracker: what it is called, its parameters (provenance), metrics and tags."""

    name: str
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: tuple[Path, ...] = ()


def check(trackers: list[str]) -> None:
    """Before anything is evaluated: each tracker's client is installed and can record without
    asking for a login (a missing package or W&B credentials is a ConfigError, exit 2)."""
    for tracker in trackers:
        module, extra = EXTRAS[tracker]
        require(module, f"--log {tracker}", extra)
        if tracker == "wandb" and os.environ.get("WANDB_MODE", "") not in ("offline", "disabled") and not os.environ.get("WANDB_API_KEY"):
            netrc = Path.home() / ".netrc"
            if not (netrc.exists() and "api.wandb.ai" in netrc.read_text(errors="replace")):
                raise ConfigError("--log wandb: no W&B credentials (WANDB_API_KEY or `wandb login`)",
                                  hint="set WANDB_MODE=offline to record locally and `wandb sync` later")


def _figures(summary: list[MetricSummary], prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for s in summary:
        key = f"{prefix}{s.task}/{s.metric}"
        e = s.estimate
        for name, value in ((key, e.mean), (f"{key}.ci_low", e.low), (f"{key}.ci_high", e.high), (f"{key}.n", float(e.n))):
            if value is not None and math.isfinite(value):
                out[name] = float(value)
    return out


def run_entries(store: Store, run_ids: list[str]) -> list[Entry]:
    """What `harness run` produced or reused, one entry per variant: every task's metrics with
    their intervals, and each run's provenance (keys, hashes, backend, seed, versions)."""
    runs = store.query("SELECT * FROM runs WHERE list_contains(?, run_id) ORDER BY variant, suite, task", [run_ids])
    by_variant: dict[str, list[dict]] = {}
    for r in runs:
        by_variant.setdefault(r["variant"], []).append(r)
    entries = []
    for variant, rows in by_variant.items():
        first = rows[0]
        params = {"variant": variant, "variant_key": first["variant_key"], "backend": first["backend"], "device": str(first["device"]),
                  "dtype": str(first["dtype"]), "seed": str(first["seed"]), "harness_version": first["harness_version"],
                  "git_commit": str(first["git_commit"]), "suites": ",".join(sorted({r["suite"] for r in rows}))}
        for r in rows:
            for key in ("run_id", "run_key", "data_hash", "prompt_hash"):
                params[f"{r['task']}/{key}"] = str(r[key])
            if r["partial"]:
                params[f"{r['task']}/partial"] = f"{r['n_samples']} of {r['n_items_total']} items"
        summary = summarize(store, [variant], run_ids=[r["run_id"] for r in rows])
        entries.append(Entry(f"{variant} ({', '.join(sorted({r['suite'] for r in rows}))})", params, _figures(summary),
                             {"harness.kind": "run", "harness.variant": variant}))
    return entries


def report_entry(store: Store, spec, report: Path, html: Path, gate=None) -> Entry:
    """A report: every variant's figures on its tasks (the runs the report reads), the gate's
    verdicts when it has rules (`gate`: harness.report.gate.GateResult), the HTML as an artifact."""
    summary = summarize(store, spec.variants, spec.tasks, spec.statistics.resamples, spec.statistics.confidence, spec.statistics.seed)
    metrics: dict[str, float] = {}
    for variant in spec.variants:
        metrics.update(_figures([s for s in summary if s.variant == variant], f"{variant}/"))
    runs = store.query("SELECT variant, task, run_id FROM latest_runs WHERE list_contains(?, variant) ORDER BY variant, task",
                       [spec.variants])
    params = {"report": str(report), "title": spec.title, "variants": ",".join(spec.variants), "baseline": spec.baseline or spec.variants[0],
              "harness_version": __version__, "confidence": str(spec.statistics.confidence)}
    params.update({f"{r['variant']}/{r['task']}/run_id": r["run_id"] for r in runs})
    tags = {"harness.kind": "report"}
    artifacts = [html]
    if gate is not None:
        code = gate.exit_code()
        metrics["gate/exit_code"] = float(code)
        tags["harness.gate"] = gate.status
        for i, v in enumerate(gate.verdicts, 1):
            tags[f"gate/rule_{i}"] = f"{v.status}: {v.label}: {v.detail}"[:5000]
            metrics[f"gate/rule_{i}.passed"] = float(v.status == "pass")
    return Entry(spec.title, params, metrics, tags, tuple(artifacts))


def log(tracker: str, entries: list[Entry], store_dir: Path) -> list[str]:
    """Record the entries; returns where each went (a run id or a local path)."""
    try:
        return _mlflow(entries, store_dir) if tracker == "mlflow" else _wandb(entries)
    except HarnessError:
        raise
    except Exception as exc:  # the tracker's own failure, reported with what is safe
        raise TrackerError(f"--log {tracker}: {type(exc).__name__}: {exc}",
                           hint="the results are in the store; fix the tracker's settings and log again with "
                                "`harness report REPORT --log ...`") from exc


def _mlflow(entries: list[Entry], store_dir: Path) -> list[str]:
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        # MLflow 3 keeps its local file store behind an opt-in; a local run is what a user without
        # a tracking server asks for, so it is opted in for this default location only.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        os.environ["MLFLOW_TRACKING_URI"] = (store_dir.resolve() / "mlruns").as_uri()
    import mlflow

    mlflow.set_experiment(os.environ.get("MLFLOW_EXPERIMENT_NAME", "harness"))
    out = []
    for e in entries:
        with mlflow.start_run(run_name=e.name) as run:
            mlflow.log_params({k: v[:6000] for k, v in e.params.items()})
            mlflow.log_metrics(e.metrics)
            mlflow.set_tags(e.tags)
            for path in e.artifacts:
                mlflow.log_artifact(str(path))
            out.append(f"mlflow run {run.info.run_id} ({mlflow.get_tracking_uri()})")
    return out


def _wandb(entries: list[Entry]) -> list[str]:
    import wandb

    out = []
    for e in entries:
        run = wandb.init(project=os.environ.get("WANDB_PROJECT", "harness"), name=e.name, config={**e.params, **e.tags},
                         tags=["harness", e.tags.get("harness.kind", "run")], reinit="create_new")
        try:
            run.summary.update(e.metrics)
            for path in e.artifacts:
                artifact = wandb.Artifact(f"harness-{path.stem}", type="report")
                artifact.add_file(str(path))
                run.log_artifact(artifact)
        finally:
            run.finish()
        out.append(f"wandb run {run.id} ({run.dir if os.environ.get('WANDB_MODE') == 'offline' else run.url})")
    return out
