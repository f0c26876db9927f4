"""`harness run --ray`: model replicas on a local 2-CPU Ray instance evaluate shards of items; the
driver alone writes the store, and the rows are the single-process run's. A replica killed
mid-run loses at most its shard in flight; a killed driver's run resumes from the store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from harness.cli import main
from tests.conftest import REPO, write

ray = pytest.importorskip("ray")

N = 24

SUITE = """
name: rs
tasks:
  - name: gen
    type: generation
    data: {format: jsonl, path: d.jsonl}
    id_field: id
    prompt: {template: "Brief: {{ topic }}", reference: "{{ topic }}"}
    generation: {max_new_tokens: 8, batch_size: 2}
    scorers: [exact_match, rouge]
  - name: mc
    type: multiple_choice
    data: {format: jsonl, path: d.jsonl}
    id_field: id
    prompt: {template: "Q: {{ topic }}\\nA:"}
    multiple_choice: {choices_field: options, answer_field: gold, continuation: text}
    scorers: [acc]
  - name: cls
    type: classification
    data: {format: jsonl, path: d.jsonl}
    id_field: id
    prompt: {template: "Label: {{ topic }}"}
    classification: {labels: [good, bad, meh], label_field: label}
"""


JUDGED = SUITE.split("  - name: mc")[0] + """
  - name: rate
    type: judge
    grading: single
    of: gen
    judge: {backend: local, mode: choice}
"""
"""The generation task and a local judge rating its outputs."""


def _workspace(tmp_path: Path, delay: float = 0.0, replicas: int = 2, suite: str = SUITE) -> tuple[Path, Path, Path]:
    items = [{"id": f"i{k:02d}", "topic": f"topic {k} " + "word " * (k % 5), "options": ["yes", "no", "maybe"],
              "gold": k % 3, "label": ["good", "bad", "meh"][k % 3]} for k in range(N)]
    write(tmp_path / "d.jsonl", "\n".join(json.dumps(i) for i in items) + "\n")
    log = tmp_path / "calls.log"
    models = write(tmp_path / "m.yaml", f"base: {{name: fake-r, source: fake, options: {{delay_s: {delay}, call_log: '{log}'}}, "
                                        f"resources: {{num_replicas: {replicas}}}}}\n")
    return write(tmp_path / "s.yaml", suite), models, log


def _rows(store: Path, tasks=("gen", "mc", "cls")) -> dict:
    """Every stored row a report reads, without timings and run ids."""
    con = duckdb.connect(str(store), read_only=True)
    try:
        samples = con.execute("""SELECT r.task, s.sample_id, s.prompt, s.reference, s.output, s.details FROM samples s
                                 JOIN runs r USING (run_id) WHERE list_contains(?, r.task) ORDER BY 1, 2""", [list(tasks)]).fetchall()
        scores = con.execute("""SELECT r.task, x.sample_id, x.scorer, x.metric, x.value FROM scores x JOIN runs r USING (run_id)
                                WHERE list_contains(?, r.task) ORDER BY 1, 2, 3, 4""", [list(tasks)]).fetchall()
        stats = con.execute("""SELECT r.task, x.metric, x.value, x.low, x.high, x.n FROM run_stats x JOIN runs r USING (run_id)
                               WHERE list_contains(?, r.task) ORDER BY 1, 2""", [list(tasks)]).fetchall()
        runs = con.execute("SELECT task, count(*) FROM runs GROUP BY 1 ORDER BY 1").fetchall()
        left = con.execute("SELECT count(*) FROM checkpoints").fetchone()[0]
    finally:
        con.close()

    def untimed(details: str) -> dict:
        d = json.loads(details)
        d.pop("latency_s", None)
        return d
    return {"samples": [(*r[:5], untimed(r[5])) for r in samples], "scores": scores, "stats": stats, "runs": runs,
            "checkpoints": left}


def _asked(log: Path) -> int:
    return sum(int(line.split()[1]) for line in log.read_text().splitlines()) if log.exists() else 0


def test_two_replicas_store_the_single_process_rows(tmp_path, ray_cluster):
    suite, models, log = _workspace(tmp_path)
    plain, spread = tmp_path / "plain.duckdb", tmp_path / "ray.duckdb"
    assert main(["run", str(suite), "--models", str(models), "--store", str(plain)]) == 0
    single = _asked(log)
    log.unlink()
    assert main(["run", str(suite), "--models", str(models), "--store", str(spread), "--ray", "--shard-items", "5"]) == 0
    assert _asked(log) == single  # every unit asked once, over both replicas
    assert _rows(spread) == _rows(plain)
    con = duckdb.connect(str(spread), read_only=True)
    details = [json.loads(d) for (d,) in con.execute("SELECT backend_details FROM runs ORDER BY task").fetchall()]
    con.close()
    # shards of 5 items rounded up to whole generation batches: 6 (batches of 2) for gen, 5 for mc,
    # 8 for cls (its default generation batch): 4, 5 and 3 shards
    assert [(d["ray"]["replicas"], d["ray"]["shards"]) for d in details] == [(2, 3), (2, 4), (2, 5)]
    # a rerun reuses every task, with or without Ray
    log.unlink()
    assert main(["run", str(suite), "--models", str(models), "--store", str(spread), "--ray"]) == 0
    assert not log.exists()


def test_sampled_generation_is_the_single_process_output(tmp_path, ray_cluster, tiny_model_dir):
    """A real model on two replicas: log-likelihoods and sampled generations (seeded per batch)
    are those of one process, because shards are cut in whole batches of its order."""
    items = [{"id": f"q{k}", "q": f"the cat sat on the mat number {k} " * (1 + k % 3)} for k in range(10)]
    write(tmp_path / "d.jsonl", "\n".join(json.dumps(i) for i in items) + "\n")
    models = write(tmp_path / "m.yaml", f"base: {{name: tiny, source: hf_dir, path: '{tiny_model_dir}', options: {{batch_size: 4}}, "
                                        "resources: {num_replicas: 2}}\n")
    suite = write(tmp_path / "s.yaml", """
        name: tiny
        tasks:
          - name: gen
            type: generation
            data: {format: jsonl, path: d.jsonl}
            id_field: id
            prompt: {template: "{{ q }}", reference: "{{ q }}"}
            generation: {max_new_tokens: 6, batch_size: 2, temperature: 0.9, top_p: 0.95}
            scorers: [exact_match]
          - name: ppl
            type: perplexity
            data: {format: jsonl, path: d.jsonl}
            id_field: id
            prompt: {template: "{{ q }}"}
        """)
    plain, spread = tmp_path / "plain.duckdb", tmp_path / "ray.duckdb"
    assert main(["run", str(suite), "--models", str(models), "--store", str(plain)]) == 0
    assert main(["run", str(suite), "--models", str(models), "--store", str(spread), "--ray", "--shard-items", "2"]) == 0
    a, b = _rows(plain, ("gen", "ppl")), _rows(spread, ("gen", "ppl"))
    assert a["samples"] == b["samples"] and a["scores"] == b["scores"] and a["stats"] == b["stats"]
    assert len({s[4] for s in a["samples"] if s[0] == "gen"}) > 1  # sampled: the outputs differ item to item


def test_a_replica_killed_mid_run_loses_at_most_its_shard(tmp_path, ray_cluster, monkeypatch):
    monkeypatch.setenv("HARNESS_PROGRESS", "0")
    suite, models, log = _workspace(tmp_path, delay=0.05)
    plain = tmp_path / "plain.duckdb"
    assert main(["run", str(suite), "--models", str(models), "--store", str(plain)]) == 0
    work = _asked(log)
    log.unlink()
    store = tmp_path / "ray.duckdb"
    result: dict = {}

    def run() -> None:
        result["code"] = main(["run", str(suite), "--models", str(models), "--store", str(store), "--ray", "--shard-items", "4"])
    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.time() + 60
    while _asked(log) < 8 and time.time() < deadline:
        time.sleep(0.02)
    victim = ray.get_actor("harness-fake-r-0", namespace="harness")
    os.kill(ray.get(victim.pid.remote()), signal.SIGKILL)
    thread.join(timeout=180)
    assert result.get("code") == 0
    # the killed shard (at most 4 items: 4 outputs, 12 options or 4 labels' 3) is asked again; nothing else
    assert work < _asked(log) <= work + 4 * 3
    assert _rows(store) == _rows(plain)
    con = duckdb.connect(str(store), read_only=True)
    assert con.execute("SELECT count(*) FROM (SELECT run_id, sample_id FROM samples GROUP BY ALL HAVING count(*) > 1)").fetchone()[0] == 0
    con.close()


def test_a_killed_driver_resumes_from_the_store(tmp_path, ray_cluster):
    """The driver (`harness run --ray ADDRESS` joining the session's cluster) killed with shards
    committed: a plain rerun asks only the rest and stores the single-process rows."""
    suite, models, log = _workspace(tmp_path, delay=0.05, suite=SUITE.split("  - name: mc")[0])
    store = tmp_path / "ray.duckdb"
    env = {**os.environ, "PYTHONPATH": str(REPO), "HARNESS_PROGRESS": "0"}
    args = [sys.executable, "-m", "harness", "run", str(suite), "--models", str(models), "--store", str(store)]
    proc = subprocess.Popen([*args, "--ray", ray_cluster, "--shard-items", "4"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 90
    committed = 0
    while committed < 8 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
        try:
            con = duckdb.connect(str(store), read_only=True)
            committed = con.execute("SELECT count(*) FROM checkpoints WHERE unit <> '__wall_s__'").fetchone()[0]
            con.close()
        except duckdb.Error:
            pass  # the driver is committing
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    assert 8 <= committed < N
    # the dead driver's replicas are actors of the session's cluster: Ray removes them a moment
    # later, and a shard in flight may still be asked until then, so count once they are gone and the log is still
    deadline, before = time.time() + 60, -1
    while time.time() < deadline and (before != _asked(log) or any(
            a["name"].startswith("harness-fake-r-") for a in ray.util.list_named_actors(all_namespaces=True))):
        before = _asked(log)
        time.sleep(1.0)
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "resuming from a checkpoint" in done.stderr
    assert _asked(log) - before <= N - committed
    plain = tmp_path / "plain.duckdb"
    subprocess.run([*args[:-1], str(plain)], env=env, check=True, capture_output=True, timeout=120)
    assert _rows(store, ("gen",)) == _rows(plain, ("gen",))


def test_a_local_judge_spread_over_replicas_gives_the_same_judgments(tmp_path, ray_cluster):
    suite = JUDGED
    suite, models, log = _workspace(tmp_path, suite=suite)
    plain, spread = tmp_path / "plain.duckdb", tmp_path / "ray.duckdb"
    assert main(["run", str(suite), "--models", str(models), "--store", str(plain)]) == 0
    assert main(["run", str(suite), "--models", str(models), "--store", str(spread), "--ray"]) == 0

    def judged(store: Path) -> list:
        con = duckdb.connect(str(store), read_only=True)
        try:
            return con.execute("""SELECT x.sample_id, x.metric, x.value FROM scores x JOIN runs r USING (run_id)
                                  WHERE r.task = 'rate' ORDER BY 1, 2""").fetchall()
        finally:
            con.close()
    assert judged(spread) == judged(plain) and len(judged(plain)) >= N


@pytest.mark.parametrize("address", ["127.0.0.1:1", "nonsense"])
def test_an_unreachable_address_is_exit_2_before_anything_is_written(tmp_path, capsys, address):
    suite, models, _ = _workspace(tmp_path)
    store = tmp_path / "h.duckdb"
    t0 = time.time()
    assert main(["run", str(suite), "--models", str(models), "--store", str(store), "--ray", address]) == 2
    assert time.time() - t0 < 30 and not store.exists()
    assert "--ray" in capsys.readouterr().err


@pytest.mark.parametrize("base, error", [
    ("source: fake, resources: {num_gpus: 1}", "resources.num_gpus 1 but this machine has no CUDA GPUs"),
    ("source: fake, resources: {num_replicas: 1, num_gpus: 0.5}", "resources.num_gpus 0.5 but"),
    ("source: hf_dir, path: TINY, backend: vllm, options: {tensor_parallel_size: 2}", "a vLLM engine over 2 GPUs"),
    ("source: hf_dir, path: TINY, backend: vllm", "resources.num_gpus 1 but this machine has no CUDA GPUs"),
    ("source: hf_dir, path: TINY, options: {device_map: auto, max_memory: {0: 10GiB, cpu: 20GiB}}", "max_memory: {0: '10GiB'"),
    ("source: hf_dir, path: TINY, options: {device_map: 'cuda:1'}", "device_map: cuda:1"),
])
def test_gpu_settings_on_a_machine_without_gpus_are_exit_2(tmp_path, capsys, tiny_model_dir, base, error):
    """Checked before the store is opened or a model loaded, with and without --ray."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    suite, _, _ = _workspace(tmp_path)
    models = write(tmp_path / "g.yaml", f"base: {{name: g, {base.replace('TINY', repr(str(tiny_model_dir)))}}}\n")
    store = tmp_path / "h.duckdb"
    assert main(["run", str(suite), "--models", str(models), "--store", str(store)]) == 2
    assert error in capsys.readouterr().err and not store.exists()


def test_a_local_judge_asking_for_a_gpu_is_exit_2_before_anything_runs(tmp_path, capsys):
    """The judge's model is checked with the variants', so a GPU-only judge fails up front,
    not after every output was generated."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    suite = JUDGED
    suite, _, log = _workspace(tmp_path, suite=suite)
    write(tmp_path / "a.jsonl", "".join(json.dumps({"id": f"i{k:02d}", "output": "x"}) + "\n" for k in range(N)))
    models = write(tmp_path / "j.yaml", f"base: {{name: grader, source: fake, options: {{call_log: '{log}'}}, "
                                        "resources: {num_gpus: 1}}\n")
    store = tmp_path / "h.duckdb"
    assert main(["run", str(suite), "--models", str(models), "--answers", f"a={tmp_path / 'a.jsonl'}",
                 "--store", str(store)]) == 2
    assert "grader: it asks for resources.num_gpus 1 but this machine has no CUDA GPUs" in capsys.readouterr().err
    assert not store.exists() and not log.exists()


def test_device_map_auto_serves_on_cpu(tmp_path, tiny_model_dir):
    """device_map: auto is not a GPU setting: accelerate places a model on what there is."""
    suite, _, _ = _workspace(tmp_path, suite=SUITE.split("  - name: cls")[0].split("  - name: mc")[0])
    models = write(tmp_path / "g.yaml", f"base: {{name: g, source: hf_dir, path: '{tiny_model_dir}', "
                                        "options: {device_map: auto, batch_size: auto}}\n")
    store = tmp_path / "h.duckdb"
    assert main(["run", str(suite), "--models", str(models), "--store", str(store), "--limit", "4"]) == 0
    con = duckdb.connect(str(store), read_only=True)
    details = json.loads(con.execute("SELECT backend_details FROM runs").fetchone()[0])
    con.close()
    assert details["device_map"] == "auto" and details["batch_size"]["reached"] == 64


def test_more_than_the_cluster_has_is_exit_2_not_a_wait(tmp_path, capsys, ray_cluster):
    suite, _, _ = _workspace(tmp_path)
    store = tmp_path / "h.duckdb"
    for resources, error in [("{num_replicas: 3}", "need more than the cluster's 2 CPU"),
                             ("{num_gpus: 1}", "the Ray cluster has 0 GPU"),
                             ("{num_cpus: 4}", "one replica needs 4 CPU")]:
        models = write(tmp_path / "g.yaml", f"base: {{name: fake-g, source: fake, resources: {resources}}}\n")
        assert main(["run", str(suite), "--models", str(models), "--store", str(store), "--ray"]) == 2
        assert error in capsys.readouterr().err and not store.exists()


def test_a_second_driver_on_a_held_store_is_exit_2_before_a_model_loads(tmp_path, capsys, ray_cluster):
    from harness.store.db import Store

    suite, models, log = _workspace(tmp_path)
    store = tmp_path / "h.duckdb"
    with Store(store, hold=False):  # the first driver's writer session
        assert main(["run", str(suite), "--models", str(models), "--store", str(store), "--ray"]) == 2
    assert "another harness run or build" in capsys.readouterr().err
    assert not log.exists()  # no replica was started, no model asked


def test_shard_items_needs_ray(tmp_path, capsys):
    suite, models, _ = _workspace(tmp_path)
    assert main(["run", str(suite), "--models", str(models), "--store", str(tmp_path / "h.duckdb"), "--shard-items", "4"]) == 2
    assert "only with --ray" in capsys.readouterr().err
