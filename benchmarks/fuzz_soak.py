"""Fuzzing soak (a benchmark, not a test): every target of tests/test_fuzz.py under its soak
profile, 10,000 Hypothesis examples per target (`make test` runs the same targets with the small,
derandomized ci profile).

Each target runs in its own pytest process with HARNESS_FUZZ_PROFILE=soak, so one target's
failure (Hypothesis stops it at the first failing example and shrinks it) does not stop the
others, and the test module's per-target counts (HARNESS_FUZZ_STATS) are read back: examples
tried (shrinking included), exit 0 (a valid result; gate's 1 and 3 and run's 1 for the command
line), exit 2 (a clear error), and what must stay 0: tracebacks or other exit codes, writes
before an error, and error messages that name no file and field or line.

    python benchmarks/fuzz_soak.py                        # 10,000 examples per target (hours on 2 cores)
    python benchmarks/fuzz_soak.py --examples 100         # a quick look
    python benchmarks/fuzz_soak.py --targets suite,cli --seed 7
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _measurements import add_write_docs_flag, run_recorded  # beside this script: its folder is on sys.path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.test_fuzz import PROFILE_EXAMPLES, TARGETS  # noqa: E402 (the targets and the soak count live with the tests)

MUST_BE_ZERO = ("tracebacks", "bad_exit", "writes_before_error", "unclear_message")


def run_target(target: str, examples: int | None, seed: int | None) -> tuple[dict, int, float, str]:
    """(counts, pytest's exit code, wall seconds, pytest's output) of one target under the soak profile."""
    test, _ = TARGETS[target]
    with tempfile.TemporaryDirectory() as tmp:
        stats = Path(tmp) / "stats.json"
        env = {**os.environ, "HARNESS_FUZZ_PROFILE": "soak", "HARNESS_FUZZ_STATS": str(stats), "HF_HUB_OFFLINE": "1",
               "HARNESS_PROGRESS": "0", "PYTHONPATH": str(REPO)}
        if examples is not None:
            env["HARNESS_FUZZ_EXAMPLES"] = str(examples)
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"tests/test_fuzz.py::{test}"]
        if seed is not None:
            cmd.append(f"--hypothesis-seed={seed}")
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        counts = json.loads(stats.read_text()).get(target, {}) if stats.is_file() else {}
    return counts, proc.returncode, wall, proc.stdout + proc.stderr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, help=f"examples per target (default: the soak profile's {PROFILE_EXAMPLES:,})")
    parser.add_argument("--targets", help=f"comma-separated targets (default all: {', '.join(TARGETS)})")
    parser.add_argument("--seed", type=int, help="Hypothesis seed (default: a random one, printed by a failing target)")
    add_write_docs_flag(parser)
    args = parser.parse_args()
    targets = args.targets.split(",") if args.targets else list(TARGETS)
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; targets: {', '.join(TARGETS)}")
    n = args.examples or PROFILE_EXAMPLES
    print(f"# Fuzzing soak ({n:,} examples per target; {os.cpu_count()} CPUs; {time.strftime('%Y-%m-%d')})\n")
    print("| target | what is fuzzed | examples | exit 0 | exit 2 | tracebacks | writes before error | unclear messages "
          "| seconds | ms per example |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    failed, total, projected = [], 0.0, 0.0
    for target in targets:
        counts, rc, wall, output = run_target(target, args.examples, args.seed)
        total += wall
        # the soak's time: the process's fixed cost (start, the workspace's store) plus its examples' time, scaled
        fuzzing = counts.get("seconds", wall)
        projected += (wall - fuzzing) + fuzzing * PROFILE_EXAMPLES / max(counts.get("examples", 0), 1)
        tried = counts.get("examples", 0)
        results = counts.get("exit_0", 0) + counts.get("exit_1", 0) + counts.get("exit_3", 0)
        bad = {k: counts.get(k, 0) for k in MUST_BE_ZERO}
        print(f"| {target} | {TARGETS[target][1]} | {tried:,} | {results:,} | {counts.get('exit_2', 0):,} "
              f"| {bad['tracebacks'] + bad['bad_exit']} | {bad['writes_before_error']} | {bad['unclear_message']} "
              f"| {wall:.0f} | {1000 * counts.get('seconds', wall) / max(tried, 1):.0f} |",
              flush=True)
        if rc != 0 or any(bad.values()):
            failed.append(target)
            print(f"\n--- {target}: pytest exit code {rc} ---\n{output[-6000:]}", file=sys.stderr)
    print(f"\n{len(targets)} targets in {total / 60:.1f} min"
          + (f"; {PROFILE_EXAMPLES:,} examples per target would take about {projected / 3600:.1f} h" if n != PROFILE_EXAMPLES else ""))
    if failed:
        print(f"failing targets: {', '.join(failed)} (their first failing example is above, on stderr)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(run_recorded("fuzz_soak", main, markdown=True))
