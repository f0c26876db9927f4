"""`type: lm_eval` tasks: lm-eval's own task machinery, requests served by harness backends, every
sample a harness row. Local task YAML over local files (no network)."""

from __future__ import annotations

import json

import duckdb
import pytest

from harness.cli import main
from tests.conftest import write

pytest.importorskip("lm_eval")

ITEMS = [{"question": f"What is {a} plus {b}?", "choices": [str(a + b), str(a + b + 1), str(a * b + 7)], "answer": k % 3,
          "sum": str(a + b)} for k, (a, b) in enumerate([(1, 2), (3, 4), (5, 6), (2, 2), (7, 1), (4, 4)])]
# Put the right sum at the gold position, so the data is consistent.
for it in ITEMS:
    right = it["sum"]
    others = [c for c in it["choices"] if c != right]
    it["choices"] = others[:it["answer"]] + [right] + others[it["answer"]:]

MC_YAML = """
task: tiny_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{question}}}}\\nAnswer:"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: answer
metric_list:
  - metric: acc
  - metric: acc_norm
"""

GEN_YAML = """
task: tiny_gen
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "Q: {{{{question}}}}\\nA:"
doc_to_target: "{{{{sum}}}}"
generation_kwargs: {{until: ["\\n"], max_gen_toks: 16, do_sample: false}}
filter_list:
  - name: number
    filter:
      - function: regex
        regex_pattern: "(\\\\d+)"
      - function: take_first
metric_list:
  - metric: exact_match
"""

SUITE = """
name: lmeval
seed: 3
tasks:
  - name: {name}
    type: lm_eval
    lm_eval: {{task: {task}, include_path: tasks{extra}}}
"""


@pytest.fixture
def tasks_dir(tmp_path):
    data = write(tmp_path / "items.jsonl", "".join(json.dumps(i) + "\n" for i in ITEMS))
    write(tmp_path / "tasks" / "tiny_mc.yaml", MC_YAML.format(data=data))
    write(tmp_path / "tasks" / "tiny_gen.yaml", GEN_YAML.format(data=data))
    return tmp_path


def test_an_lm_eval_task_on_the_hf_backend_equals_lm_eval_itself(tasks_dir, tiny_model_dir):
    """Per-doc log-likelihoods and acc through the harness equal lm-eval's HFLM on the same model."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    suite = write(tasks_dir / "s.yaml", SUITE.format(name="mc", task="tiny_mc", extra=""))
    models = write(tasks_dir / "m.yaml", f"base: {{name: tiny, source: hf_dir, path: {tiny_model_dir}, options: {{max_length: 128}}}}\n")
    store = tasks_dir / "h.duckdb"
    assert main(["run", str(suite), "--models", str(models), "--store", str(store)]) == 0
    con = duckdb.connect(str(store), read_only=True)
    ours = {int(sid): json.loads(d) for sid, d in con.execute("SELECT sample_id, details FROM samples").fetchall()}
    acc = dict(con.execute("SELECT sample_id, value FROM scores WHERE metric = 'acc'").fetchall())
    assert con.execute("SELECT count(DISTINCT metric) FROM scores WHERE metric IN ('acc', 'acc_norm')").fetchone()[0] == 2
    con.close()
    lm = HFLM(pretrained=str(tiny_model_dir), max_length=128, batch_size=2, device="cpu")
    ref = simple_evaluate(model=lm, tasks=["tiny_mc"], task_manager=TaskManager(include_path=str(tasks_dir / "tasks"), include_defaults=False),
                          log_samples=True, bootstrap_iters=0)
    assert len(ours) == len(ITEMS)
    for s in ref["samples"]["tiny_mc"]:
        mine = ours[s["doc_id"]]
        assert [r[0][0] for r in mine["responses"]] == pytest.approx([r[0][0] for r in s["resps"]], abs=1e-4)
        assert acc[str(s["doc_id"])] == s["acc"]


def test_generation_with_lm_eval_filters_and_a_seeded_limit(tasks_dir):
    replies = {f"Q: {i['question']}": (f" It is {i['sum']}." if k % 2 == 0 else " no idea") for k, i in enumerate(ITEMS)}
    suite = write(tasks_dir / "s.yaml", SUITE.format(name="gen", task="tiny_gen", extra=", limit: 4"))
    models = write(tasks_dir / "m.yaml", f"base: {{name: f, source: fake, options: {{responses: {json.dumps(replies)}}}}}\n")
    store = tasks_dir / "h.duckdb"
    assert main(["run", str(suite), "--models", str(models), "--store", str(store)]) == 0
    con = duckdb.connect(str(store), read_only=True)
    got = dict(con.execute("SELECT sample_id, value FROM scores WHERE metric = 'exact_match_number'").fetchall())
    outputs = dict(con.execute("SELECT sample_id, output FROM samples").fetchall())
    con.close()
    assert len(got) == 4 and sorted(got) != ["0", "1", "2", "3"]  # a seeded sample, not the first four
    for sid, value in got.items():
        assert value == (1.0 if int(sid) % 2 == 0 else 0.0)
        assert outputs[sid] == (json.dumps([ITEMS[int(sid)]["sum"]]) if int(sid) % 2 == 0 else json.dumps(["[invalid]"]))


def test_unknown_tasks_and_uncached_datasets_are_clear_errors(tasks_dir, capsys):
    models = write(tasks_dir / "m.yaml", "base: {name: f, source: fake}\n")
    suite = write(tasks_dir / "s.yaml", SUITE.format(name="x", task="no_such_task", extra=""))
    assert main(["run", str(suite), "--models", str(models), "--store", str(tasks_dir / "h.duckdb")]) == 2
    assert "lm-eval has no task 'no_such_task'" in capsys.readouterr().err
    write(tasks_dir / "tasks" / "hub.yaml", "task: hub_only\ndataset_path: someone/not_cached_anywhere\noutput_type: multiple_choice\n"
          "test_split: test\ndoc_to_text: q\ndoc_to_choice: [a, b]\ndoc_to_target: 0\nmetric_list: [{metric: acc}]\n")
    suite = write(tasks_dir / "s.yaml", SUITE.format(name="x", task="hub_only", extra=""))
    assert main(["run", str(suite), "--models", str(models), "--store", str(tasks_dir / "h.duckdb")]) == 2
    err = capsys.readouterr().err
    assert "could not load task 'hub_only'" in err and "someone/not_cached_anywhere" in err
    assert not (tasks_dir / "h.duckdb").exists()


MMLU_SUBJECT = """
task: mini_mmlu_{subject}
dataset_path: csv
dataset_kwargs:
  data_files:
    test: {data}
  column_names: [question, A, B, C, D, answer]
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{question.strip()}}}}\\nA. {{{{A}}}}\\nB. {{{{B}}}}\\nC. {{{{C}}}}\\nD. {{{{D}}}}\\nAnswer:"
doc_to_choice: ["A", "B", "C", "D"]
doc_to_target: "{{{{['A', 'B', 'C', 'D'].index(answer)}}}}"
metric_list:
  - metric: acc
"""

MMLU_GROUP = """
group: mini_mmlu
task: [mini_mmlu_arithmetic, mini_mmlu_world_geography]
aggregate_metric_list:
  - metric: acc
    weight_by_size: true
"""


def test_an_lm_eval_group_is_one_task_whose_aggregate_equals_lm_evals(tmp_path, tiny_model_dir):
    """Two MMLU subjects as an lm-eval group: every subject's documents are samples of one harness
    task (categorised by subject), the per-item mean equals lm-eval's size-weighted group acc, and
    lm-eval's own group figure and version are stored with the run."""
    import importlib.metadata

    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from tests.conftest import REPO

    for subject in ("arithmetic", "world_geography"):
        write(tmp_path / "tasks" / f"{subject}.yaml",
              MMLU_SUBJECT.format(subject=subject, data=REPO / "data" / "mmlu_sample" / "test" / f"{subject}_test.csv"))
    write(tmp_path / "tasks" / "group.yaml", MMLU_GROUP)
    suite = write(tmp_path / "s.yaml", SUITE.format(name="mmlu", task="mini_mmlu", extra=""))
    models = write(tmp_path / "m.yaml", f"base: {{name: tiny, source: hf_dir, path: {tiny_model_dir}, options: {{max_length: 256}}}}\n")
    store = tmp_path / "h.duckdb"
    assert main(["run", str(suite), "--models", str(models), "--store", str(store)]) == 0
    con = duckdb.connect(str(store), read_only=True)
    values = dict(con.execute("SELECT sample_id, value FROM scores WHERE metric = 'acc'").fetchall())
    categories = dict(con.execute("SELECT sample_id, json_extract_string(details, '$.category') FROM samples").fetchall())
    group = con.execute("SELECT value, n FROM run_stats WHERE metric = 'group_acc'").fetchone()
    libraries = json.loads(con.execute("SELECT libraries FROM runs").fetchone()[0])
    con.close()
    ref = simple_evaluate(model=HFLM(pretrained=str(tiny_model_dir), max_length=256, batch_size=4, device="cpu"), tasks=["mini_mmlu"],
                          task_manager=TaskManager(include_path=str(tmp_path / "tasks"), include_defaults=False), bootstrap_iters=0,
                          log_samples=True)
    sizes = {t: ref["n-samples"][t]["effective"] for t in ("mini_mmlu_arithmetic", "mini_mmlu_world_geography")}
    assert len(values) == sum(sizes.values()) and sorted(set(categories.values())) == sorted(sizes)
    assert all(sid.startswith(categories[sid] + "/") for sid in values)
    expected = ref["groups"]["mini_mmlu"]["acc,none"]
    assert sum(values.values()) / len(values) == pytest.approx(expected)  # size-weighted, as lm-eval aggregates
    assert group == (pytest.approx(expected), sum(sizes.values()))
    for task, n in sizes.items():  # and each subject equals lm-eval's, document by document
        mine = [values[f"{task}/{s['doc_id']}"] for s in ref["samples"][task]]
        assert mine == [s["acc"] for s in ref["samples"][task]] and len(mine) == n
    assert libraries["lm-eval"] == importlib.metadata.version("lm-eval")
