"""Latency tasks: time to first token, request latency, output tokens and tokens/s per request;
percentiles overall and by prompt-length bucket; throughput at each concurrency level; cost from
an instance price or per-token prices; peak memory of the serving process.

Per-request figures are score rows (so any percentile is one SQL query away); the run-level
figures below are computed when the run is written and stored in `run_stats`."""

from __future__ import annotations

import logging
import resource
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.backends.base import GENERATE, Generation, GenerationConfig, token_count_note
from harness.stats.hypothesis import ItemStatistic, Ratio
from harness.stats.intervals import Estimate, bootstrap_statistic
from harness.stats.metricspec import KindRows, Metric, RunValues, TaskKind, TaskRun
from harness.store.db import SampleRow, ScoreRow, StatRow, nan_to_null

log = logging.getLogger(__name__)

PERCENTILES = (50, 95, 99)

_STAT = "harness.tasks.kinds.latency:run_statistic"


@dataclass(frozen=True)
class Request:
    sample_id: str
    concurrency: int
    prompt: str
    out: Generation
    chunk: int = 0
    """Which group of requests it was served with (one batch of `concurrency`)."""
    chunk_size: int = 1
    item_id: str = ""
    """The item the request sent (its sample id is `<item>@c<concurrency>`)."""


def latency_rows(backend, task, run_id: str, seed: int, ckpt=None):
    """(samples, scores, run stats, generation config) of a latency task run. With a checkpoint,
    each group of requests is committed as it is served and stored groups are not sent again."""
    import json

    spec = task.spec
    g = spec.generation
    gen = GenerationConfig(g.max_new_tokens, g.temperature, g.top_p, tuple(g.stop), g.batch_size, seed, g.top_k, g.repetition_penalty)
    requests, walls = measure(backend, list(task.samples), gen, spec.latency.concurrency, spec.latency.warmup, ckpt)
    samples, scores = [], []
    for r in requests:
        values = request_scores(r)
        samples.append(SampleRow(run_id, r.sample_id, r.prompt, None, r.out.text,
                                 json.dumps({"concurrency": r.concurrency, "chunk": r.chunk, "chunk_size": r.chunk_size, **values,
                                             **token_count_note(backend)}), item_id=r.item_id, concurrency=r.concurrency))
        scores += [ScoreRow(run_id, r.sample_id, "latency", m, v) for m, v in values.items()]
    stats = [StatRow(run_id, m, nan_to_null(e.mean), nan_to_null(e.low), nan_to_null(e.high), e.n, None)
             for m, e in run_stats(requests, walls, spec.latency, peak_memory_mb())]
    return samples, scores, stats, gen


def measure(backend, samples, gen: GenerationConfig, levels: list[int], warmup: int,
            ckpt=None) -> tuple[list[Request], dict[int, float]]:
    """Send every sample at each concurrency level (chunks of that size served together).
    Returns the requests and, per level, the wall time summed over its chunks. A chunk stored
    in the checkpoint (unit `c<level>:<chunk>`) keeps its recorded timings and is not re-sent;
    the warmup is repeated in each process, so resumed chunks are measured warm too."""
    from dataclasses import asdict, replace

    reset_peak_memory()
    if warmup:
        backend.generate([s.prompt for s in samples[:warmup]], replace(gen, batch_size=max(1, warmup)))
    requests, walls = [], {}
    for c in levels:
        config = replace(gen, batch_size=c)
        wall = 0.0
        for start in range(0, len(samples), c):
            chunk = samples[start:start + c]
            unit = f"c{c}:{start // c}"
            stored = ckpt.get(unit) if ckpt is not None else None
            if stored is not None:
                outs = [Generation(**o) for o in stored]
            else:
                outs = backend.generate([s.prompt for s in chunk], config)
                if ckpt is not None:
                    ckpt.add(unit, [asdict(o) for o in outs])
            wall += max(o.request_latency_s or o.latency_s * len(chunk) for o in outs)
            requests += [Request(f"{s.id}@c{c}", c, s.prompt, o, start // c, len(chunk), s.id) for s, o in zip(chunk, outs)]
        walls[c] = wall
        log.info("concurrency %d: %d requests in %.1fs", c, len(samples), wall)
    return requests, walls


def request_scores(r: Request) -> dict[str, float]:
    o = r.out
    latency = o.request_latency_s if o.request_latency_s is not None else o.latency_s
    ttft = o.ttft_s if o.ttft_s is not None else latency
    decode = max(latency - ttft, 1e-9)
    return {"ttft_s": ttft, "latency_s": latency, "output_tokens": float(o.output_tokens), "prompt_tokens": float(o.prompt_tokens),
            "tokens_per_s": o.output_tokens / latency if latency > 0 else 0.0,
            "decode_tokens_per_s": max(o.output_tokens - 1, 0) / decode if o.output_tokens > 1 else 0.0}


def _percentile(values: list[float], q: float, resamples: int = 500, seed: int = 0) -> Estimate:
    import numpy as np

    arr = np.asarray(values, dtype=float)
    return bootstrap_statistic(len(arr), lambda idx: float(np.percentile(arr[idx], q)), resamples, 0.95, seed)


def buckets(prompt_tokens: list[int]) -> dict[str, float]:
    """The suite's 10th, 50th and 90th percentile prompt lengths: the bucket centres."""
    import numpy as np

    p10, p50, p90 = np.percentile(prompt_tokens, [10, 50, 90])
    return {"short": float(p10), "median": float(p50), "long": float(p90)}


def run_stats(requests: list[Request], walls: dict[int, float], spec, peak_mb: float) -> list[tuple[str, Estimate]]:
    """(metric, estimate) rows for run_stats. Latency percentiles at the first concurrency level."""

    first = next(iter(walls))
    single = [r for r in requests if r.concurrency == first]
    scores = [request_scores(r) for r in single]
    out: list[tuple[str, Estimate]] = []
    for metric in ("latency_s", "ttft_s", "tokens_per_s"):
        values = [s[metric] for s in scores]
        for q in PERCENTILES:
            out.append((f"{metric}_p{q}", _percentile(values, q)))
    centres = buckets([int(s["prompt_tokens"]) for s in scores])
    for name, centre in centres.items():
        nearest = [s for s in scores if min(centres, key=lambda k: abs(centres[k] - s["prompt_tokens"])) == name]
        if nearest:
            for q in PERCENTILES:
                out.append((f"latency_s_p{q}_{name}", _percentile([s["latency_s"] for s in nearest], q)))
            out.append((f"prompt_tokens_{name}", _point(centre, len(nearest))))
    for c, wall in walls.items():
        at_c = [r for r in requests if r.concurrency == c]
        tokens = sum(r.out.output_tokens for r in at_c)
        words = sum(len(r.out.text.split()) for r in at_c)
        tps = tokens / wall if wall > 0 else float("nan")
        out.append((f"throughput_tokens_per_s_c{c}", _point(tps, len(at_c))))
        out.append((f"requests_per_s_c{c}", _point(len(at_c) / wall if wall > 0 else float("nan"), len(at_c))))
        if spec.price_per_hour is not None and tokens:
            cost_per_s = spec.price_per_hour / 3600.0
            out.append((f"cost_per_1k_output_tokens_c{c}", _point(cost_per_s * wall / tokens * 1000, len(at_c))))
            if words:
                out.append((f"cost_per_1k_words_c{c}", _point(cost_per_s * wall / words * 1000, len(at_c))))
    if spec.price_per_1k_output_tokens is not None:
        tin = sum(r.out.prompt_tokens for r in single)
        tout = sum(r.out.output_tokens for r in single)
        cost = (tin * (spec.price_per_1k_input_tokens or 0.0) + tout * spec.price_per_1k_output_tokens) / 1000
        if tout:
            out.append(("api_cost_per_1k_output_tokens", _point(cost / tout * 1000, len(single))))
        out.append(("api_cost_per_request", _point(cost / len(single), len(single))))
    out.append(("peak_memory_mb", _point(peak_mb, len(requests))))
    return out


def _point(value: float, n: int) -> Estimate:
    return Estimate(value, float("nan"), float("nan"), n)


def run_statistic(store, run_id: str, metric: str, params: dict) -> RunValues:
    """A serving figure of a stored latency run, recomputed from its per-request rows so the
    gate can test it: percentiles exactly (order statistics), throughput and cost by resampling
    requests (each request carries its share of its batch's wall time). Items are the task's
    item ids, so two variants' runs pair up."""
    import json

    import numpy as np

    run = store.query("SELECT task_config FROM runs WHERE run_id = ?", [run_id])
    config = json.loads(run[0]["task_config"]) if run and run[0].get("task_config") else {}
    spec = config.get("latency", {})
    rows = store.query("SELECT item_id, output, details FROM samples WHERE run_id = ? ORDER BY sample_id", [run_id])
    reqs = [(r["item_id"], r["output"] or "", json.loads(r["details"])) for r in rows]
    levels = spec.get("concurrency") or sorted({d["concurrency"] for _, _, d in reqs})
    level = int(params["c"]) if "c" in params else levels[0]
    at = [(sid, text, d) for sid, text, d in reqs if d["concurrency"] == level]
    ids = tuple(sid for sid, _, _ in at)
    if "q" in params:
        source = metric.split("_p", 1)[0]
        values = np.array([d[source] for _, _, d in at], dtype=float)
        if "bucket" in params:
            centres = buckets([int(d["prompt_tokens"]) for _, _, d in at])
            keep = [i for i, (_, _, d) in enumerate(at)
                    if min(centres, key=lambda k: abs(centres[k] - d["prompt_tokens"])) == params["bucket"]]
            values, ids = values[keep], tuple(ids[i] for i in keep)
        q = int(params["q"])
        return RunValues(ItemStatistic(ids, lambda idx: float(np.percentile(values[list(idx)], q))), values=tuple(values))
    tokens = np.array([d["output_tokens"] for _, _, d in at], dtype=float)
    prompt = np.array([d["prompt_tokens"] for _, _, d in at], dtype=float)

    def ratio_values(unit_ids, num, den, scale=1.0) -> RunValues:
        r = Ratio(tuple(num), tuple(den), scale)
        return RunValues(ItemStatistic(unit_ids, r.value), ratio=r)

    if metric.startswith("api_cost") and spec.get("price_per_1k_output_tokens") is not None:
        cost = (prompt * (spec.get("price_per_1k_input_tokens") or 0.0) + tokens * spec["price_per_1k_output_tokens"]) / 1000
        if metric == "api_cost_per_1k_output_tokens":
            return ratio_values(ids, cost, tokens, 1000)
        return ratio_values(ids, cost, np.ones(len(cost)))
    # Throughput and instance cost are properties of the batches requests were served in (a batch's
    # requests share its wall time), so the units resampled are the batches. Two variants' batch
    # k hold the same items, so they pair up.
    chunks: dict[int, list[int]] = {}
    for i, (_, _, d) in enumerate(at):
        chunks.setdefault(d.get("chunk", i // level), []).append(i)
    order = sorted(chunks)
    words = np.array([len(text.split()) for _, text, _ in at], dtype=float)
    batch_tokens = np.array([tokens[chunks[k]].sum() for k in order])
    batch_words = np.array([words[chunks[k]].sum() for k in order])
    batch_wall = np.array([max(at[i][2]["latency_s"] for i in chunks[k]) for k in order])
    batch_requests = np.array([len(chunks[k]) for k in order], dtype=float)
    batch_ids = tuple(f"batch{k}" for k in order)
    per_second = (spec.get("price_per_hour") or 0.0) / 3600.0
    if metric.startswith("throughput_tokens_per_s_c"):
        return ratio_values(batch_ids, batch_tokens, batch_wall)
    if metric.startswith("requests_per_s_c"):
        return ratio_values(batch_ids, batch_requests, batch_wall)
    if metric.startswith("cost_per_1k_output_tokens_c") and spec.get("price_per_hour") is not None:
        return ratio_values(batch_ids, batch_wall, batch_tokens, per_second * 1000)
    if metric.startswith("cost_per_1k_words_c") and spec.get("price_per_hour") is not None:
        return ratio_values(batch_ids, batch_wall, batch_words, per_second * 1000)
    return RunValues()


def reset_peak_memory() -> None:
    """Start a fresh peak-memory window, so a latency task reports its own peak and not that of
    whatever this process loaded before (Linux: clear_refs 5 resets VmHWM; CUDA: the allocator's)."""
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
    except ImportError:
        pass
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # not Linux, or not permitted: the figure is then the process's lifetime peak


def peak_memory_mb() -> float:
    """Peak memory of this (serving) process since reset_peak_memory(): GPU memory allocated
    when on CUDA, else peak resident set size."""
    try:
        import torch

        if torch.cuda.is_available() and torch.cuda.max_memory_allocated() > 0:
            return torch.cuda.max_memory_allocated() / 2**20
    except ImportError:
        pass
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024


def rows(backend, task, run: TaskRun) -> KindRows:
    """The task kind's entry point (harness.stats.metricspec.TaskKind.rows)."""
    samples, scores, stats, config = latency_rows(backend, task, run.run_id, run.seed, run.ckpt)
    return KindRows(samples, scores, stats, config)


KIND = TaskKind(
    "latency", "serving measurements: every item sent at each concurrency level",
    metrics=(
        Metric("latency_s", "request latency", "lower", low=0, unit="s"),
        Metric("ttft_s", "time to first token", "lower", low=0, unit="s"),
        Metric("tokens_per_s", "output tokens per second (per request)", "higher", low=0, unit="tokens/s"),
        Metric("decode_tokens_per_s", "decode tokens per second (per request)", "higher", low=0, unit="tokens/s"),
        Metric("output_tokens", "output tokens", "none", low=0, unit="tokens"),
        Metric("prompt_tokens", "prompt tokens", "none", low=0, unit="tokens"),
    ),
    run_metrics=(
        Metric("latency_s_p{q}", "p{q} request latency", "lower", level="run", low=0, unit="s", statistic=_STAT, percentile=True,
               description="percentile of request latency at the first concurrency level"),
        Metric("ttft_s_p{q}", "p{q} time to first token", "lower", level="run", low=0, unit="s", statistic=_STAT, percentile=True),
        Metric("tokens_per_s_p{q}", "p{q} tokens/s per request", "higher", level="run", low=0, unit="tokens/s", statistic=_STAT,
               percentile=True),
        Metric("latency_s_p{q}_{bucket}", "p{q} latency, {bucket} prompts", "lower", level="run", low=0, unit="s",
               statistic=_STAT, percentile=True, description="requests whose prompt length is nearest the bucket's centre"),
        Metric("prompt_tokens_{bucket}", "prompt length, {bucket} bucket centre", "none", level="run", unit="tokens"),
        Metric("throughput_tokens_per_s_c{c}", "throughput at concurrency {c}", "higher", level="run", low=0, unit="tokens/s",
               statistic=_STAT),
        Metric("requests_per_s_c{c}", "requests per second at concurrency {c}", "higher", level="run", low=0, statistic=_STAT),
        Metric("cost_per_1k_output_tokens_c{c}", "cost per 1K output tokens at concurrency {c}", "lower", level="run", low=0,
               statistic=_STAT, description="from the task's price_per_hour"),
        Metric("cost_per_1k_words_c{c}", "cost per 1,000 words at concurrency {c}", "lower", level="run", low=0, statistic=_STAT),
        Metric("api_cost_per_1k_output_tokens", "API cost per 1K output tokens", "lower", level="run", low=0, statistic=_STAT),
        Metric("api_cost_per_request", "API cost per request", "lower", level="run", low=0, statistic=_STAT),
        Metric("peak_memory_mb", "peak memory of the serving process", "lower", level="run", low=0, unit="MB",
               description="one measurement per run: no interval"),
    ), rows=rows, needs=frozenset({GENERATE}))
