"""Reliability figures (a benchmark, not a test): what a crash, a flaky judge endpoint and a
reader during a run cost, measured on the fake backend so only the harness's own work counts.

- resume: `harness run` on a generation task is SIGKILLed at random points; per kill, the units
  committed and journaled before it, the work the rerun asks of the backend, and the work redone
  (asked twice: at most the batch in flight, since every finished unit is journaled at once).
- checkpoint cost: the same task with one commit at the end, with the default policy (each unit
  journaled, at most one commit a second) and with a commit every 16 units, side by side.
- readers during a run: `harness list runs` and `harness gate`, run while a run writes.
- flaky endpoint: a pairwise judge task against a loopback endpoint failing 30% of attempts with
  HTTP 503, 10% by stalling past the timeout and 5% with malformed bodies; plain reruns until
  the run completes, counting judgments lost.

    python benchmarks/reliability.py            # about 2 minutes on 2 cores
    python benchmarks/reliability.py --kills 3  # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _measurements import add_write_docs_flag, run_recorded  # beside this script: its folder is on sys.path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

ENV = {**os.environ, "PYTHONPATH": str(REPO), "HARNESS_PROGRESS": "0", "HF_HUB_OFFLINE": "1"}


def _workspace(root: Path, n: int, delay: float) -> list[str]:
    items = [{"id": f"i{k:05d}", "topic": f"topic {k} " + "word " * (k % 7)} for k in range(n)]
    (root / "d.jsonl").write_text("\n".join(json.dumps(i) for i in items) + "\n")
    (root / "m.yaml").write_text(f"base: {{name: fake, source: fake, options: {{delay_s: {delay}, call_log: '{root / 'calls.log'}'}}}}\n")
    (root / "s.yaml").write_text("""name: bench
tasks:
  - name: work
    type: generation
    data: {format: jsonl, path: d.jsonl}
    id_field: id
    prompt: {template: "Brief: {{ topic }}", reference: "{{ topic }}"}
    generation: {max_new_tokens: 8, batch_size: 8}
    scorers: [exact_match]
""")
    return [sys.executable, "-m", "harness", "run", str(root / "s.yaml"), "--models", str(root / "m.yaml"), "--store", str(root / "h.duckdb")]


def _asked(root: Path) -> int:
    log = root / "calls.log"
    return sum(int(line.split()[1]) for line in log.read_text().splitlines()) if log.exists() else 0


def _query(store: Path, sql: str):
    import duckdb

    con = duckdb.connect(str(store), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def resume(kills: int, n: int, seed: int) -> None:
    rng = random.Random(seed)
    print(f"\n## Resume after kill -9 (generation, {n} items, fake backend 50 ms/output, batch 8, default checkpoints)\n")
    print("| kill | committed before | journaled before | asked on resume | redone (asked twice) | rows after | duplicates |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for k in range(kills):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            args = _workspace(root, n, 0.05)
            proc = subprocess.Popen(args, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            target = rng.randint(n // 10, 9 * n // 10)
            while _asked(root) < target and proc.poll() is None:
                time.sleep(0.005)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            asked_before = _asked(root)
            committed = _query(root / "h.duckdb", "SELECT count(*) FROM checkpoints WHERE unit <> '__wall_s__'")[0][0]
            journal = root / "h.duckdb.journal"
            journaled = len({json.loads(line)["unit"] for line in journal.read_text().splitlines()
                             if line.endswith("}") and '"unit"' in line}) if journal.exists() else 0
            subprocess.run(args, env=ENV, check=True, capture_output=True)
            asked_resume = _asked(root) - asked_before
            rows = _query(root / "h.duckdb", "SELECT count(*), count(DISTINCT sample_id) FROM samples")[0]
            redone = asked_before + asked_resume - n
            print(f"| {k + 1} | {committed} | {journaled} | {asked_resume} | {redone} | {rows[0]} | {rows[0] - rows[1]} |")


def checkpoint_cost(n: int, repeats: int) -> None:
    print(f"\n## Checkpoint cost (generation, {n} items, fake backend with no delay: only the harness's work)\n")
    print(f"| commits | wall (median of {repeats}) | commits made | cost per commit |")
    print("|---|---:|---:|---:|")
    policies = (("one at the end", {"HARNESS_CHECKPOINT_ITEMS": str(10**9), "HARNESS_CHECKPOINT_SECONDS": str(10**9)}),
                ("default: each output journaled, a commit at most once a second", {}),
                ("every 16 outputs, no floor", {"HARNESS_CHECKPOINT_MIN_SECONDS": "0"}))
    base = None
    for label, env in policies:
        times, commits = [], []
        for _ in range(repeats):
            with tempfile.TemporaryDirectory() as tmp:
                root = Path(tmp)
                args = _workspace(root, n, 0.0)
                t0 = time.perf_counter()
                out = subprocess.run(args[:3] + ["-v"] + args[3:], env={**ENV, **env}, check=True, capture_output=True, text=True)
                times.append(time.perf_counter() - t0)
                commits.append(out.stderr.count("checkpoint: committed"))
        wall = statistics.median(times)
        base = wall if base is None else base
        made = int(statistics.median(commits))
        cost = f"{(wall - base) / made * 1000:.1f} ms" if made > 1 else "-"
        print(f"| {label} | {wall:.2f} s | {made} | {cost} |")


def readers(n: int, probes: int) -> None:
    print(f"\n## Readers while a run writes ({n} items, fake backend 20 ms/output, commit every 16 outputs)\n")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        args = _workspace(root, n, 0.0)
        subprocess.run(args, env=ENV, check=True, capture_output=True)  # a finished run to read
        (root / "m.yaml").write_text("base: {name: fake, source: fake, options: {delay_s: 0.02, default_output: x}}\n")
        (root / "r.yaml").write_text("title: R\nvariants: [fake]\ngate:\n  - {variant: fake, task: work, metric: exact_match, max: 1.0}\n")
        proc = subprocess.Popen(args, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(2.0)
        results = {"list runs": [], "gate": []}
        for _ in range(probes):
            for name, cmd in (("list runs", ["list", "runs"]), ("gate", ["gate", str(root / "r.yaml")])):
                t0 = time.perf_counter()
                r = subprocess.run([sys.executable, "-m", "harness", *cmd, "--store", str(root / "h.duckdb")], env=ENV,
                                   capture_output=True, text=True)
                results[name].append((r.returncode, time.perf_counter() - t0))
        running = proc.poll() is None
        proc.wait()
        print(f"(the run was {'still' if running else 'no longer'} writing when the last probe ended)\n")
        print("| command | probes | exit codes | median wall | max wall |")
        print("|---|---:|---|---:|---:|")
        for name, rs in results.items():
            codes = sorted({c for c, _ in rs})
            walls = [w for _, w in rs]
            print(f"| harness {name} | {len(rs)} | {codes} | {statistics.median(walls):.2f} s | {max(walls):.2f} s |")


def flaky(items: int, seed: int) -> None:
    from tests.fake_judge_server import FakeJudgeServer, prefers_marker

    print(f"\n## Flaky judge endpoint ({items} items, pairwise in both orders, 30% 503 / 10% stalls / 5% malformed)\n")
    with tempfile.TemporaryDirectory() as tmp, \
            FakeJudgeServer(prefers_marker(), flaky={"p_5xx": 0.3, "p_timeout": 0.1, "p_malformed": 0.05, "seed": seed}) as srv:
        root = Path(tmp)
        rows = [{"id": f"i{k}", "topic": f"t{k}", "tweet": "x"} for k in range(items)]
        (root / "items.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
        for name, text in (("good", "GOOD"), ("bad", "meh")):
            (root / f"{name}.jsonl").write_text("\n".join(json.dumps({"id": r["id"], "output": f"{text} {r['topic']}"}) for r in rows) + "\n")
        (root / "s.yaml").write_text(f"""name: judged
tasks:
  - name: tweets
    type: generation
    data: {{format: jsonl, path: items.jsonl}}
    id_field: id
    prompt: {{template: "Write about {{{{ topic }}}}", reference: "{{{{ tweet }}}}"}}
  - name: vs_bad
    type: judge
    grading: pairwise
    of: tweets
    baseline: bad
    judge: {{backend: openai, base_url: "{srv.url}", model: j, backoff_s: 0.01, timeout_s: 0.5, max_retries: 2, use_reference: false}}
""")
        args = [sys.executable, "-m", "harness", "run", str(root / "s.yaml"), "--store", str(root / "h.duckdb"),
                "--answers", f"good={root / 'good.jsonl'}", "--answers", f"bad={root / 'bad.jsonl'}"]
        print("| attempt | exit | calls sent (with retries) | judgments stored | failed after retries | lost |")
        print("|---:|---:|---:|---:|---:|---:|")
        for attempt in range(1, 9):
            srv.requests = []
            rc = subprocess.run(args, env=ENV, capture_output=True).returncode
            stored, failed = _query(root / "h.duckdb", """SELECT count(*), count(*) FILTER (WHERE error IS NOT NULL) FROM judgments
                                                          JOIN latest_runs USING (run_id) WHERE task = 'vs_bad'""")[0]
            print(f"| {attempt} | {rc} | {len(srv.requests)} | {stored} | {failed} | {2 * items - stored} |")
            if rc == 0:
                break
        win = _query(root / "h.duckdb", """SELECT avg(value) FROM scores JOIN latest_runs USING (run_id)
                                           WHERE task = 'vs_bad' AND metric = 'win_rate'""")[0][0]
        print(f"\nwin rate of the always-better answer set once complete: {win:.3f} (expected 1.000)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=8, help="kill -9 trials (default 8)")
    parser.add_argument("--items", type=int, default=400, help="items of the resume and reader tasks (default 400)")
    parser.add_argument("--seed", type=int, default=0)
    add_write_docs_flag(parser)
    args = parser.parse_args()
    print(f"# Reliability ({os.cpu_count()} CPUs; {time.strftime('%Y-%m-%d')})")
    resume(args.kills, args.items // 2, args.seed)
    checkpoint_cost(4000, 3)
    readers(max(args.items, 1000), 5)
    flaky(40, args.seed)


if __name__ == "__main__":
    raise SystemExit(run_recorded("reliability", main, markdown=True))
