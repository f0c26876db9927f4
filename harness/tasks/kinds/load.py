"""Load tasks: capacity at an SLO. The task's prompts are sent to a served model (an
OpenAI-compatible endpoint: llama.cpp's server, vLLM, any API) with **open-loop** Poisson
arrivals at each rate, lowest first: requests arrive on a seeded schedule whether or not earlier
ones have finished, as users do, so a server past its capacity shows as growing queues and
latency (a closed loop would slow its own arrivals down and hide it).

Each request's latency is measured from its scheduled arrival (time to first token and to the
last token), so waiting for a client thread counts as a user's wait would. Per rate: achieved
throughput, latency percentiles with intervals (order statistics), errors, and whether the SLO's
percentile is decidedly within its budget (its upper bound is), decidedly over it (its lower
bound is) or undecided. The capacity is the highest rate such that it and every lower rate
decidedly meet the SLO; `load_max_rate_at_slo` is 0 when the lowest rate already does not, and a
rate below the highest tested when the data cannot decide a higher one."""

from __future__ import annotations

import json
import logging
import math
import random
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from urllib.parse import urlparse

from harness.backends.base import GENERATE, GenerationConfig
from harness.errors import ConfigError
from harness.report.formatting import figure
from harness.stats.hypothesis import ItemStatistic, quantile_test
from harness.stats.metricspec import KindRows, Metric, RunValues, TaskKind, TaskRun
from harness.store.db import SampleRow, ScoreRow, StatRow, nan_to_null

log = logging.getLogger(__name__)

PERCENTILES = (50, 95, 99)
_STAT = "harness.tasks.kinds.load:run_statistic"


@dataclass(frozen=True)
class LoadRequest:
    rpm: int
    """The arrival rate it was sent at, in requests per minute."""
    k: int
    """Its position in that rate's schedule."""
    item_id: str
    prompt: str
    scheduled_s: float
    """Its arrival time, from the start of the rate's schedule."""
    text: str = ""
    output_tokens: int = 0
    prompt_tokens: int = 0
    ttft_s: float = math.inf
    latency_s: float = math.inf
    error: str | None = None
    """Why it failed (its latency counts as infinite: a failed request never met the SLO)."""

    @property
    def sample_id(self) -> str:
        return f"{self.item_id}@{self.rpm}rpm#{self.k}"


def arrivals(rate: float, n: int, seed: int) -> list[float]:
    """n Poisson arrival times at `rate` per second (exponential gaps), seeded by the rate: every
    variant gets the same schedule, so their requests pair up."""
    rng = random.Random(f"{seed}/load/{rate}")
    t, out = 0.0, []
    for _ in range(n):
        t += rng.expovariate(rate)
        out.append(t)
    return out


def check_reachable(base_url: str, timeout_s: float = 3.0) -> None:
    """ConfigError (exit 2) unless something listens at the endpoint, before any request."""
    url = urlparse(base_url)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "127.0.0.1", port), timeout=timeout_s):
            pass
    except OSError as exc:
        raise ConfigError(f"{base_url}: no server answers ({exc.strerror or exc}); a load task sends nothing to it",
                          hint="start the server first (e.g. python -m llama_cpp.server --model FILE, vllm serve MODEL)") from None


def drive(backend, items: list, rate: float, n: int, config: GenerationConfig, seed: int, max_in_flight: int) -> list[LoadRequest]:
    """Send n requests at their scheduled arrival times (open loop), each the next item of a
    seeded order; return them with their timings, in schedule order."""
    rpm = round(rate * 60)
    order = list(items)
    random.Random(f"{seed}/load/order").shuffle(order)
    planned = [LoadRequest(rpm, k, order[k % len(order)].id, order[k % len(order)].prompt, at)
               for k, at in enumerate(arrivals(rate, n, seed))]
    start = time.perf_counter()

    def one(req: LoadRequest) -> LoadRequest:
        due = start + req.scheduled_s
        try:
            out = backend.send(req.prompt, config, seed + req.k, since=due)
        except Exception as exc:  # the server's failure is a data point: kept with the request, never dropped
            return replace(req, error=f"{type(exc).__name__}: {exc}"[:500])
        return replace(req, text=out.text, output_tokens=out.output_tokens, prompt_tokens=out.prompt_tokens,
                       ttft_s=out.ttft_s if out.ttft_s is not None else out.request_latency_s, latency_s=out.request_latency_s)

    with ThreadPoolExecutor(max_workers=min(max_in_flight, n)) as pool:
        futures = []
        for req in planned:
            wait = start + req.scheduled_s - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            futures.append(pool.submit(one, req))
        done = [f.result() for f in futures]
    return done


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (linear interpolation, numpy's default); with failed (infinite)
    requests, the order statistic itself, so the tail reads as infinite rather than undefined."""
    import numpy as np

    arr = np.asarray(values, dtype=float)
    return float(np.percentile(arr, q, method="linear" if np.isfinite(arr).all() else "inverted_cdf"))


def quantile_interval(values: list[float], q: float, confidence: float = 0.95) -> tuple[float, float]:
    """A distribution-free two-sided interval of the q-quantile from order statistics (the
    gate's percentile test); infinite above when too few values can bound it."""
    o = quantile_test(values, q, 0.0, (1 - confidence) / 2)
    return o.low, o.high


def verdict(values: list[float], q: float, budget_s: float, alpha: float = 0.05) -> tuple[str, float, float]:
    """(meets | misses | undecided, lower, upper): the q-th percentile against the budget, decided
    as the gate decides a percentile rule: one-sided order-statistic bounds at 1 - alpha."""
    o = quantile_test(values, q / 100, budget_s, alpha)
    if o.high <= budget_s:
        return "meets", o.low, o.high
    if o.low > budget_s:
        return "misses", o.low, o.high
    return "undecided", o.low, o.high


def rows(backend, task, run: TaskRun) -> KindRows:
    """The task kind's entry point: drive each rate, store every request and the capacity figures."""
    spec = task.spec
    load, g, slo = spec.load, spec.generation, spec.load.slo
    if not hasattr(backend, "send"):
        raise ConfigError(f"task '{spec.name}': load tasks drive a served model over HTTP, and the {backend.info.name} backend "
                          "serves in-process", hint="evaluate the endpoint: a models file base with source: endpoint, or "
                                                    "`harness run --model endpoint:URL,model=NAME`")
    check_reachable(backend.base_url)
    config = GenerationConfig(g.max_new_tokens, g.temperature, g.top_p, tuple(g.stop), 1, run.seed, g.top_k, g.repetition_penalty)
    budget = slo.latency_ms / 1000
    requests: list[LoadRequest] = []
    stats: list[StatRow] = []
    capacity, decided = 0.0, True
    point, below = 0.0, True  # the same on the percentiles' point estimates: what the data suggests, undecided or not
    for rate in load.rates:
        t0 = time.perf_counter()
        got = drive(backend, list(task.samples), rate, load.requests_per_rate, config, run.seed, load.max_in_flight)
        requests += got
        figures = rate_figures(got, rate, slo.percentile, budget, slo.of)
        stats += [StatRow(run.run_id, name, _null(v), _null(lo), _null(hi), len(got), warn) for name, v, lo, hi, warn in figures["rows"]]
        log.info("%.3g req/s: p%g %s %.0f ms [%.0f, %.0f], %d errors, %.1fs: %s", rate, slo.percentile, slo.of,
                 1000 * figures["value"], 1000 * figures["low"], 1000 * figures["high"], figures["errors"],
                 time.perf_counter() - t0, figures["verdict"])
        if decided and figures["verdict"] == "meets":
            capacity = rate
        else:
            decided = False
        if below and figures["value"] <= budget:
            point = rate
        else:
            below = False
        if load.stop_after_failure and figures["verdict"] == "misses":
            break
    note = None
    if capacity == load.rates[-1]:
        note = "the highest tested rate meets the SLO: the capacity is at least this (test higher rates to find it)"
    elif capacity == 0:
        note = "no tested rate decidedly meets the SLO"
    n = len(requests)
    stats.append(StatRow(run.run_id, "load_max_rate_at_slo", capacity, None, None, n, note))
    stats.append(StatRow(run.run_id, "load_max_rate_at_slo_point", point, None, None, n,
                         None if point == capacity else "from point estimates: the data can't decide the rates between"))
    if load.price_per_hour is not None and capacity > 0:
        at = [r for r in requests if r.rpm == round(capacity * 60) and r.error is None]
        tokens_per_s = sum(r.output_tokens for r in at) / max(1e-9, _window(at))
        if tokens_per_s > 0:
            stats.append(StatRow(run.run_id, "load_cost_per_1k_output_tokens_at_slo", load.price_per_hour / 3600 / tokens_per_s * 1000,
                                 None, None, len(at), None))
    samples, scores = [], []
    for r in requests:
        details = {"rate_rpm": r.rpm, "k": r.k, "scheduled_s": round(r.scheduled_s, 6), "ttft_s": _finite(r.ttft_s),
                   "latency_s": _finite(r.latency_s), "output_tokens": r.output_tokens, "prompt_tokens": r.prompt_tokens,
                   "error": r.error}
        samples.append(SampleRow(run.run_id, r.sample_id, r.prompt, None, r.text, json.dumps(details), item_id=r.item_id))
        if r.error is None:
            scores += [ScoreRow(run.run_id, r.sample_id, "load", "latency_s", r.latency_s),
                       ScoreRow(run.run_id, r.sample_id, "load", "ttft_s", r.ttft_s),
                       ScoreRow(run.run_id, r.sample_id, "load", "output_tokens", float(r.output_tokens))]
        scores.append(ScoreRow(run.run_id, r.sample_id, "load", "request_failed", float(r.error is not None)))
    return KindRows(samples, scores, stats, config)


def _null(x: float | None) -> float | None:
    """NaN and missing figures as NULL; an infinite bound (too few requests to bound a tail, or
    failed requests in it) is kept: it says the data can't bound it."""
    return None if x is None else nan_to_null(x)


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _window(requests: list[LoadRequest]) -> float:
    """From the first arrival to the last completion: the span the throughput is measured over."""
    if not requests:
        return 0.0
    return max(r.scheduled_s + r.latency_s for r in requests) - min(r.scheduled_s for r in requests)


def rate_figures(requests: list[LoadRequest], rate: float, q: float, budget_s: float, of: str) -> dict:
    """One rate's figures as (name, value, low, high, note) rows, and its SLO verdict."""
    rpm = round(rate * 60)
    ok = [r for r in requests if r.error is None]
    latency = [r.latency_s for r in requests]  # failed requests count as infinitely slow
    ttft = [r.ttft_s for r in requests]
    rows_: list[tuple] = []
    for name, values in (("latency_s", latency), ("ttft_s", ttft)):
        for p in sorted(set(PERCENTILES) | {q}):
            low, high = quantile_interval(values, p / 100, 0.95)
            rows_.append((f"load_{name}_p{p:g}_{rpm}rpm", percentile(values, p), low, high, None))
    window = _window(ok)
    rows_.append((f"load_requests_per_s_{rpm}rpm", len(ok) / window if window > 0 else math.nan, None, None, None))
    rows_.append((f"load_output_tokens_per_s_{rpm}rpm", sum(r.output_tokens for r in ok) / window if window > 0 else math.nan,
                  None, None, None))
    errors = len(requests) - len(ok)
    rows_.append((f"load_failed_{rpm}rpm", errors / len(requests), None, None,
                  f"{errors} of {len(requests)} requests failed" if errors else None))
    values = latency if of == "latency" else ttft
    decision, low, high = verdict(values, q, budget_s)
    rows_.append((f"load_slo_met_{rpm}rpm", {"meets": 1.0, "misses": 0.0}.get(decision, math.nan), None, None,
                  f"p{q:g} {of} one-sided 95% bounds [{_ms(low)}, {_ms(high)}] vs {budget_s * 1000:g} ms: {decision}"))
    return {"rows": rows_,
            "verdict": decision, "value": percentile(values, q), "low": low, "high": high, "errors": errors}


def _ms(x: float) -> str:
    return f"{x * 1000:.0f} ms" if math.isfinite(x) else "inf"


def run_statistic(store, run_id: str, metric: str, params: dict) -> RunValues:
    """A rate's latency percentile recomputed from the stored requests (exact order statistics),
    so a gate rule can test it: {metric: load_latency_s_p95_120rpm, max: 0.6}."""
    rows_ = store.query("SELECT sample_id, details FROM samples WHERE run_id = ? ORDER BY sample_id", [run_id])
    rpm = int(params["n"])
    source = "latency_s" if metric.startswith("load_latency_s") else "ttft_s"
    at = [(r["sample_id"], json.loads(r["details"])) for r in rows_]
    at = [(sid, d) for sid, d in at if d.get("rate_rpm") == rpm]
    values = tuple(math.inf if d.get(source) is None else float(d[source]) for _, d in at)
    q = float(params["q"])
    ids = tuple(sid for sid, _ in at)
    return RunValues(ItemStatistic(ids, lambda idx: percentile([values[i] for i in idx], q)), values=values)


KIND = TaskKind(
    "load", "capacity at an SLO: open-loop Poisson arrivals at increasing rates against a served model",
    metrics=(
        # declared as the latency kind declares them (one metric, one meaning): here measured from each arrival
        Metric("latency_s", "request latency", "lower", low=0, unit="s"),
        Metric("ttft_s", "time to first token", "lower", low=0, unit="s"),
        Metric("output_tokens", "output tokens", "none", low=0, unit="tokens"),
        Metric("request_failed", "request failed", "lower", values="binary", low=0, high=1),
    ),
    run_metrics=(
        Metric("load_latency_s_p{q}_{n}rpm", "p{q} latency at {n} requests/min", "lower", level="run", low=0, unit="s",
               statistic=_STAT, percentile=True, description="end to end, from each request's scheduled arrival"),
        Metric("load_ttft_s_p{q}_{n}rpm", "p{q} time to first token at {n} requests/min", "lower", level="run", low=0, unit="s",
               statistic=_STAT, percentile=True),
        Metric("load_requests_per_s_{n}rpm", "completed requests per second at {n} requests/min", "higher", level="run", low=0,
               description="over the span from the first arrival to the last completion; one measurement"),
        Metric("load_output_tokens_per_s_{n}rpm", "output tokens per second at {n} requests/min", "higher", level="run", low=0,
               unit="tokens/s", description="one measurement"),
        Metric("load_failed_{n}rpm", "share of failed requests at {n} requests/min", "lower", level="run", low=0, high=1),
        Metric("load_slo_met_{n}rpm", "SLO met at {n} requests/min", "higher", level="run", low=0, high=1,
               description="1: the SLO's percentile is decidedly within budget (its upper bound is), 0: decidedly over, "
                           "empty: undecided"),
        Metric("load_max_rate_at_slo", "highest rate that meets the SLO", "higher", level="run", low=0, unit="requests/s",
               description="the highest tested rate such that it and every lower rate decidedly meet the SLO"),
        Metric("load_max_rate_at_slo_point", "highest rate whose SLO percentile estimate is within budget", "higher", level="run",
               low=0, unit="requests/s", description="the same on point estimates: at least load_max_rate_at_slo; where they "
                                                     "differ, the rates between are undecided"),
        Metric("load_cost_per_1k_output_tokens_at_slo", "cost per 1K output tokens at that rate", "lower", level="run", low=0,
               description="from the task's price_per_hour and the throughput measured at the capacity"),
    ), rows=rows, needs=frozenset({GENERATE}))


def capacity_lines(figures: list[dict]) -> list[str]:
    """A load run's stored figures (metric, value, low, high, warning rows) as a table, a row per
    rate, lowest first, then the capacity and its cost."""
    import re

    by_rate: dict[int, dict[str, dict]] = {}
    for f in figures:
        m = re.fullmatch(r"load_(.+)_(\d+)rpm", f["metric"])
        if m:
            by_rate.setdefault(int(m.group(2)), {})[m.group(1)] = f

    def cell(f: dict | None, scale: float = 1.0) -> str:
        if f is None or f["value"] is None:
            return "n/a"
        bounds = ""
        if f["low"] is not None or f["high"] is not None:
            lo = figure(f["low"] * scale) if f["low"] is not None else "n/a"
            hi = figure(f["high"] * scale) if f["high"] is not None else "n/a"
            bounds = f" [{lo}, {hi}]"
        return f"{figure(f['value'] * scale)}{bounds}"

    lines = [f"{'rate/s':>7}  {'done/s':>7}  {'tokens/s':>8}  {'p50 ms':22} {'p95 ms':22} {'p95 TTFT ms':22} failed  SLO"]
    for rpm in sorted(by_rate):
        r = by_rate[rpm]
        slo = r.get("slo_met", {}).get("warning") or ""
        failed = r.get("failed", {}).get("value")
        lines.append(f"{rpm / 60:>7g}  {cell(r.get('requests_per_s')):>7}  {cell(r.get('output_tokens_per_s')):>8}  "
                     f"{cell(r.get('latency_s_p50'), 1000):22} {cell(r.get('latency_s_p95'), 1000):22} "
                     f"{cell(r.get('ttft_s_p95'), 1000):22} {figure(failed) if failed is not None else 'n/a':>6}  {slo}")
    named = {f["metric"]: f for f in figures}
    cap = named.get("load_max_rate_at_slo")
    if cap is not None:
        cost = named.get("load_cost_per_1k_output_tokens_at_slo")
        lines.append(f"capacity at the SLO: {figure(cap['value'])} requests/s" + (f" ({cap['warning']})" if cap["warning"] else "")
                     + (f"; cost per 1K output tokens there: {figure(cost['value'])}" if cost else ""))
        point = named.get("load_max_rate_at_slo_point")
        if point is not None and point["value"] != cap["value"]:
            lines.append(f"on point estimates alone: {figure(point['value'])} requests/s (the rates between are undecided: more "
                         "requests per rate would decide them)")
    return lines
