"""Chat templates at evaluation: a model with a template is scored on its templated prompts when
its models file says so (or `auto` finds an instruct model), exactly as lm-eval's
`--apply_chat_template` lays them out; the template is recorded with the run and is part of its key."""

from __future__ import annotations

import json
import shutil

import duckdb
import pytest

from harness.cli import main
from tests.conftest import write

pytest.importorskip("lm_eval")

# A template in the shape of Gemma's and ChatML's (BOS, role markers, a generation prompt), in
# plain-text markers the tiny BPE tokenizer can spell.
TEMPLATE = ("{{ bos_token }}{% for m in messages %}{% if m['role'] == 'system' %}[SYS] {{ m['content'] }}\n"
            "{% else %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endif %}{% endfor %}"
            "{% if add_generation_prompt %}<|assistant|>\n{% endif %}")

ITEMS = [{"question": f"What is {a} plus {b}?", "choices": [str(a + b), str(a + b + 1), str(a * b + 7)], "answer": 0}
         for a, b in [(1, 2), (3, 4), (5, 6), (2, 2), (7, 1), (4, 4), (6, 3), (8, 2)]]

LM_EVAL_YAML = """
task: chat_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
    train: {data}
test_split: test
fewshot_split: train
description: "Answer with the number.\\n\\n"
output_type: multiple_choice
doc_to_text: "{{{{question}}}}\\nAnswer:"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: answer
metric_list:
  - metric: acc
"""

NATIVE_SUITE = """
name: chat
tasks:
  - name: sums
    type: multiple_choice
    data: {{format: jsonl, path: {data}}}
    prompt:
      description: "Answer with the number.\\n\\n"
      template: "{{{{ question }}}}\\nAnswer:"
    multiple_choice: {{continuation: text}}
    scorers: [acc]
"""

LM_EVAL_SUITE = """
name: chat_lm_eval
seed: 3
tasks:
  - name: sums
    type: lm_eval
    lm_eval: {task: chat_mc, include_path: tasks, num_fewshot: 2}
"""


@pytest.fixture(scope="module")
def chat_model_dir(tiny_model_dir, tmp_path_factory):
    """The tiny model with a chat template in its tokenizer."""
    folder = tmp_path_factory.mktemp("chat") / "model"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["chat_template"] = TEMPLATE
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder


def _models(tmp_path, model_dir, chat, extra: str = ""):
    return write(tmp_path / f"m_{chat}.yaml",
                 f"base: {{name: tiny, source: hf_dir, path: {model_dir}, chat_template: {chat}{extra}, options: {{max_length: 256}}}}\n")


def _run(tmp_path, suite, models, store):
    assert main(["run", str(suite), "--models", str(models), "--store", str(store)]) == 0
    con = duckdb.connect(str(store), read_only=True)
    rows = con.execute("""SELECT s.prompt, s.details, r.chat_template, r.run_key FROM samples s JOIN runs r USING (run_id)
                          ORDER BY r.started_at DESC, s.sample_id""").fetchall()
    con.close()
    return rows


def _hflm(model_dir, tasks_dir, **kw):
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    lm = HFLM(pretrained=str(model_dir), max_length=256, batch_size=4, device="cpu")
    return simple_evaluate(model=lm, tasks=["chat_mc"], task_manager=TaskManager(include_path=str(tasks_dir), include_defaults=False),
                           log_samples=True, bootstrap_iters=0, random_seed=3, numpy_random_seed=3, torch_random_seed=3,
                           fewshot_random_seed=3, **kw)["samples"]["chat_mc"]


@pytest.fixture
def data(tmp_path):
    path = write(tmp_path / "items.jsonl", "".join(json.dumps(i) + "\n" for i in ITEMS))
    write(tmp_path / "tasks" / "chat_mc.yaml", LM_EVAL_YAML.format(data=path))
    return path


def test_multiple_choice_with_a_template_equals_lm_eval_apply_chat_template(tmp_path, data, chat_model_dir):
    """The harness's own multiple-choice task under `chat_template: true`: per-option
    log-likelihoods within 1e-4 of lm-eval's HFLM with apply_chat_template, same accuracy; the
    stored prompt is the templated one, and the run records the template."""
    suite = write(tmp_path / "s.yaml", NATIVE_SUITE.format(data=data))
    rows = _run(tmp_path, suite, _models(tmp_path, chat_model_dir, "true"), tmp_path / "h.duckdb")
    ours = {tuple(json.loads(d)["options"]): (p, json.loads(d), json.loads(c)) for p, d, c, _ in rows}
    ref = _hflm(chat_model_dir, tmp_path / "tasks", apply_chat_template=True)
    assert len(ours) == len(ITEMS) == len(ref)
    for s in ref:
        prompt, details, chat = ours[tuple(s["doc"]["choices"])]
        assert prompt == s["arguments"][0][0]  # the context exactly as lm-eval built it
        assert details["continuations"] == [a[1] for a in s["arguments"]]  # no target delimiter under a template
        assert details["loglikelihoods"] == pytest.approx([r[0][0] for r in s["resps"]], abs=1e-4)
        best = max(range(3), key=lambda i: details["loglikelihoods"][i])
        assert float(best == details["gold"]) == s["acc"]
    assert prompt.startswith("<bos>[SYS] Answer with the number.") and prompt.endswith("<|assistant|>\n")
    assert chat["applied"] and chat["setting"] == "true" and chat["template_hash"]


def test_an_lm_eval_task_with_fewshot_as_multiturn_equals_lm_eval(tmp_path, data, chat_model_dir):
    """`type: lm_eval` tasks get the template through lm-eval: 2-shot, examples as turns."""
    suite = write(tmp_path / "s.yaml", LM_EVAL_SUITE)
    rows = _run(tmp_path, suite, _models(tmp_path, chat_model_dir, "true", ", fewshot_as_multiturn: true"), tmp_path / "h.duckdb")
    ours = {json.loads(d)["arguments"][0][0]: json.loads(d) for _, d, _, _ in rows}
    ref = _hflm(chat_model_dir, tmp_path / "tasks", apply_chat_template=True, fewshot_as_multiturn=True, num_fewshot=2)
    for s in ref:
        context = s["arguments"][0][0]
        assert context.count("<|user|>") == 3 and context.count("<|assistant|>") == 3  # two examples as turns, then the item
        mine = ours[context]
        assert [r[0][0] for r in mine["responses"]] == pytest.approx([r[0][0] for r in s["resps"]], abs=1e-4)


def test_a_template_changes_the_scores_and_the_run_key(tmp_path, data, chat_model_dir):
    """The same model with and without its template: different prompts, different
    log-likelihoods, two runs (the template is part of the key); false records nothing."""
    suite = write(tmp_path / "s.yaml", NATIVE_SUITE.format(data=data))
    store = tmp_path / "h.duckdb"
    plain = _run(tmp_path, suite, _models(tmp_path, chat_model_dir, "false"), store)
    both = _run(tmp_path, suite, _models(tmp_path, chat_model_dir, "true"), store)
    templated = [r for r in both if r[2] is not None]
    assert len(plain) == len(templated) == len(ITEMS) and plain[0][2] is None
    assert plain[0][3] != templated[0][3]
    lls = {json.loads(d)["options"][0]: json.loads(d)["loglikelihoods"] for _, d, _, _ in plain}
    lls_chat = {json.loads(d)["options"][0]: json.loads(d)["loglikelihoods"] for _, d, _, _ in templated}
    assert all(abs(a - b) > 1e-3 for k in lls for a, b in zip(lls[k], lls_chat[k]))
    assert not plain[0][0].startswith("<bos>") and templated[0][0].startswith("<bos>")


def test_auto_applies_the_template_to_an_instruct_model_only(tmp_path, data, chat_model_dir):
    """auto: a folder named like an instruct checkpoint gets its template; the same weights under
    a base name don't; true on a model without a template is an error before anything is written."""
    instruct = tmp_path / "tiny-it"
    shutil.copytree(chat_model_dir, instruct)
    suite = write(tmp_path / "s.yaml", NATIVE_SUITE.format(data=data))
    rows = _run(tmp_path, suite, _models(tmp_path, instruct, "auto"), tmp_path / "a.duckdb")
    assert json.loads(rows[0][2])["reason"].startswith("auto: an instruct model")
    rows = _run(tmp_path, suite, _models(tmp_path, chat_model_dir, "auto"), tmp_path / "b.duckdb")
    assert rows[0][2] is None
    no_template = tmp_path / "plain-model"
    shutil.copytree(chat_model_dir, no_template)
    config = json.loads((no_template / "tokenizer_config.json").read_text())
    del config["chat_template"]
    (no_template / "tokenizer_config.json").write_text(json.dumps(config))
    for f in no_template.glob("chat_template.*"):
        f.unlink()
    store = tmp_path / "c.duckdb"
    assert main(["run", str(suite), "--models", str(_models(tmp_path, no_template, "true")), "--store", str(store)]) == 2
    if store.exists():
        con = duckdb.connect(str(store), read_only=True)
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
        con.close()


def test_a_gguf_files_template_and_bos_are_read_from_its_metadata(tmp_path):
    """llama.cpp serves a GGUF with the template in its metadata: read without loading weights."""
    gguf = pytest.importorskip("gguf")
    from harness.models.chat_template import from_gguf

    path = tmp_path / "m.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_chat_template(TEMPLATE)
    writer.add_token_list(["<pad>", "<bos>", "<eos>", "a"])
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    template = from_gguf(path)
    assert template is not None and template.source == TEMPLATE and template.bos_token == "<bos>"
    assert template.render([{"role": "user", "content": "hi"}]) == "<bos><|user|>\nhi<|end|>\n<|assistant|>\n"
    plain = tmp_path / "plain.gguf"
    writer = gguf.GGUFWriter(str(plain), "llama")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert from_gguf(plain) is None


def test_multi_turn_generation_renders_each_turn_with_the_template(tmp_path, chat_model_dir):
    """Turn 2's prompt is the whole conversation through the template: both user turns and the
    model's own first answer as an assistant message, then the generation prompt."""
    data = write(tmp_path / "mt.jsonl", json.dumps({"turns": ["Name a fruit.", "And a colour?"]}) + "\n")
    suite = write(tmp_path / "s.yaml", f"""
        name: mt
        tasks:
          - name: talk
            type: generation
            data: {{format: jsonl, path: {data}}}
            multi_turn: {{turns_field: turns, references_field: null}}
            prompt: {{template: "{{{{ turn }}}}"}}
            generation: {{max_new_tokens: 4}}
        """)
    rows = _run(tmp_path, suite, _models(tmp_path, chat_model_dir, "true"), tmp_path / "h.duckdb")
    con = duckdb.connect(str(tmp_path / "h.duckdb"), read_only=True)
    (first, answer), (second, _) = con.execute("SELECT prompt, output FROM samples ORDER BY turn").fetchall()
    con.close()
    assert first == "<bos><|user|>\nName a fruit.<|end|>\n<|assistant|>\n"
    assert second == first + f"{answer}<|end|>\n<|user|>\nAnd a colour?<|end|>\n<|assistant|>\n"
    assert json.loads(rows[0][2])["applied"]
