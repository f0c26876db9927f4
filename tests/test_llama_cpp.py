"""The llama_cpp backend and the `gguf` export recipe, on the tiny model written to GGUF by
llama.cpp's own converter. Skipped, saying why, without the `llama-cpp` extra (CI installs it:
`make test` depends on `make llama-cpp`)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from harness.backends.base import GenerationConfig
from harness.cli import main
from tests.conftest import write

REPO_DATA = Path(__file__).resolve().parent.parent / "data"

llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (make llama-cpp)")


def _converter_or_skip():
    from harness.errors import ConfigError
    from harness.models.gguf import converter_path

    try:
        return converter_path()
    except ConfigError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def tiny_gguf(tiny_model_dir, tmp_path_factory):
    """The tiny Llama as an f32 GGUF (unquantized: llama.cpp must agree with transformers)."""
    from harness.models.gguf import convert_hf

    _converter_or_skip()
    out = tmp_path_factory.mktemp("gguf") / "tiny-f32.gguf"
    convert_hf(tiny_model_dir, out, "f32", tokenizer_pre="gpt-2")
    return out


REQUESTS = [
    ("Question: what is two plus two?\nAnswer:", " B"),
    ("Question: what is two plus two?\nAnswer:", " C"),
    ("Write a tweet for Lumen Coffee.\nBrief: a rainy morning\nTweet:", " A rainy morning calls for a warm cup."),
    ("Write a tweet for Lumen Coffee.\nBrief: a rainy morning\nTweet: ", "A rainy day"),  # trailing space moves
    ("", "hello world"),
]


def test_log_likelihoods_match_transformers_on_unquantized_weights(tiny_gguf, tiny_model_dir):
    """The documented tolerance: per-option log-likelihoods within 1e-3 of hf's (float32 both;
    measured up to 1e-4 on this model), the same tokens, the same greedy verdicts."""
    from harness.backends.hf import HFBackend
    from harness.backends.llama_cpp import LlamaCppBackend

    lc, hf = LlamaCppBackend(tiny_gguf, n_ctx=512), HFBackend(tiny_model_dir)
    assert [lc.encode_pair(c, x) for c, x in REQUESTS] == [hf.encode_pair(c, x) for c, x in REQUESTS]
    done = {}
    got = lc.loglikelihood(REQUESTS, on_done=done.update)
    want = hf.loglikelihood(REQUESTS)
    assert sorted(done) == list(range(len(REQUESTS)))
    for a, b in zip(got, want):
        assert a.logprob == pytest.approx(b.logprob, abs=1e-3)
        assert (a.is_greedy, a.n_tokens) == (b.is_greedy, b.n_tokens)
    # The KV cache keeps shared prefixes between calls: scoring again (other order) gives the same.
    again = lc.loglikelihood(list(reversed(REQUESTS)))
    assert [r.logprob for r in reversed(again)] == pytest.approx([r.logprob for r in got], abs=1e-6)


def test_generation_greedy_matches_transformers_and_stops(tiny_gguf, tiny_model_dir):
    from harness.backends.hf import HFBackend
    from harness.backends.llama_cpp import LlamaCppBackend

    lc, hf = LlamaCppBackend(tiny_gguf, n_ctx=512), HFBackend(tiny_model_dir)
    prompts = ["Write a tweet for Lumen Coffee.\nBrief: a rainy morning\nTweet:", "Hello"]
    config = GenerationConfig(max_new_tokens=10)
    got = lc.generate(prompts, config)
    assert [g.text for g in got] == [g.text for g in hf.generate(prompts, config)]
    for g in got:
        assert 0 < g.ttft_s <= g.request_latency_s and g.output_tokens > 0 and g.prompt_tokens > 1
    # decoded together (n_parallel) or one at a time: on unquantized weights the same greedy text,
    # and a sequence sees only its own cache cells (identical prompts in one batch, identical outputs)
    serial, batched = lc, LlamaCppBackend(tiny_gguf, n_ctx=512, n_parallel=8)
    alone = serial.generate(prompts, config)
    assert [g.text for g in batched.generate(prompts, config)] == [g.text for g in alone]
    briefs = [f"Write a tweet for Lumen Coffee.\nBrief: {b}\nTweet:" for b in
              ("rain", "a new roast", "open late", "latte art", "cold brew", "a quiet corner", "rain", "friends")]
    together = [g.text for g in batched.generate(briefs, GenerationConfig(max_new_tokens=12, batch_size=8))]
    assert together == [g.text for g in serial.generate(briefs, GenerationConfig(max_new_tokens=12))]
    assert together[0] == together[6]
    assert alone[1].request_latency_s >= alone[0].request_latency_s  # one at a time: the second waited
    stop = got[0].text.strip()[:2]
    cut = lc.generate(prompts[:1], GenerationConfig(max_new_tokens=10, stop=(stop,)))[0].text
    assert stop not in cut
    sampled = GenerationConfig(max_new_tokens=10, temperature=1.0, seed=7, top_k=50, top_p=0.9, repetition_penalty=1.3)
    draws = [g.text for g in batched.generate(prompts * 3, sampled)]
    assert draws[:2] == [g.text for g in batched.generate(prompts, sampled)]  # seeded: its batch does not matter
    assert len(set(draws[0::2])) > 1  # each prompt position draws with its own seed


def test_a_prompt_beyond_the_context_window_is_a_clear_error(tiny_gguf):
    from harness.backends.llama_cpp import LlamaCppBackend
    from harness.errors import ConfigError

    lc = LlamaCppBackend(tiny_gguf, n_ctx=64)
    with pytest.raises(ConfigError, match="exceeds the llama_cpp context window"):
        lc.generate(["word " * 80], GenerationConfig(max_new_tokens=8))


GGUF_MODELS = """
base: {{name: tiny, source: hf_dir, path: {model}}}
variants:
  - {{name: tiny-f32, parent: tiny, method: gguf, config: {{quantization: f32, tokenizer_pre: gpt-2}}}}
  - {{name: tiny-q8, parent: tiny, method: gguf, config: {{quantization: Q8_0, tokenizer_pre: gpt-2}}, options: {{n_ctx: 1024}}}}
"""


def test_gguf_export_is_built_served_by_llama_cpp_and_compared_with_its_parent(workspace, tiny_model_dir):
    _converter_or_skip()
    models = write(workspace / "models" / "g.yaml", GGUF_MODELS.format(model=tiny_model_dir))
    store = str(workspace / "h.duckdb")
    assert main(["build", str(models), "--store", store]) == 0
    assert main(["run", str(workspace / "suites" / "mc.yaml"), str(workspace / "suites" / "gen.yaml"),
                 "--models", str(models), "--store", store]) == 0
    con = duckdb.connect(store, read_only=True)
    variants = {r[0]: r[1:] for r in con.execute("SELECT name, artifact_kind, metrics, total_params FROM variants").fetchall()}
    assert variants["tiny-q8"][0] == variants["tiny-f32"][0] == "gguf"
    q8, f32 = json.loads(variants["tiny-q8"][1]), json.loads(variants["tiny-f32"][1])
    assert q8["quantization"] == "Q8_0" and q8["gguf_bytes"] < q8["gguf_f16_bytes"] < q8["source_bytes"]
    assert f32["gguf_bytes"] > q8["gguf_bytes"] and 8.0 < q8["bits_per_weight"] < 12  # Q8_0 is 8.5 bits; norms stay f32, the tokenizer adds bytes
    runs = {(r[0], r[1]): r[2:] for r in con.execute("SELECT variant, task, backend, dtype FROM runs").fetchall()}
    assert runs[("tiny-q8", "quiz")] == ("llama_cpp", "Q8_0") and runs[("tiny-f32", "quiz")] == ("llama_cpp", "F32")
    assert runs[("tiny", "quiz")][0] == "hf"
    # The unquantized export answers the quiz as its parent does; fidelity says so per task.
    agreement = dict(con.execute("SELECT r.variant, avg(f.value) FROM fidelity f JOIN runs r USING (run_id) "
                                 "WHERE r.task = 'quiz' AND f.metric = 'parent_agreement' GROUP BY 1").fetchall())
    assert agreement["tiny-f32"] == 1.0 and 0.0 <= agreement["tiny-q8"] <= 1.0
    outputs = dict(con.execute("SELECT r.variant || '/' || o.sample_id, o.output FROM samples o JOIN runs r USING (run_id) "
                               "WHERE r.task = 'tweets'").fetchall())
    same = [k for k in outputs if k.startswith("tiny/") and outputs[k] == outputs.get("tiny-f32/" + k.split("/", 1)[1])]
    assert len(same) == 6  # greedy generation of the f32 export equals transformers'


def test_llama_cpp_needs_a_gguf_and_the_export_needs_the_converter(workspace, tiny_model_dir, capsys, monkeypatch):
    store = str(workspace / "h.duckdb")
    models = write(workspace / "models" / "m.yaml", f"base: {{name: tiny, source: hf_dir, path: {tiny_model_dir}, backend: llama_cpp}}\n")
    assert main(["run", str(workspace / "suites" / "gen.yaml"), "--models", str(models), "--store", store]) == 2
    err = capsys.readouterr().err
    assert "has no GGUF file to serve with llama_cpp" in err and "method: gguf" in err
    assert _variant_rows(store) == 0  # refused before the base was recorded
    monkeypatch.setenv("HARNESS_LLAMA_CPP_CONVERTER", str(workspace / "nowhere" / "convert_hf_to_gguf.py"))
    models = write(workspace / "models" / "g.yaml", GGUF_MODELS.format(model=tiny_model_dir))
    assert main(["build", str(models), "--store", store]) == 2
    err = capsys.readouterr().err
    assert "convert_hf_to_gguf.py is not installed" in err and "make llama-cpp" in err
    assert _variant_rows(store) == 0  # refused before the base was recorded
    assert not list((workspace / "artifacts").glob("tiny-*")) if (workspace / "artifacts").exists() else True


def _variant_rows(store: str) -> int:
    """Rows in the store's lineage table (0 when the store was never created)."""
    from pathlib import Path

    if not Path(store).exists():
        return 0
    con = duckdb.connect(store, read_only=True)
    n = con.execute("SELECT count(*) FROM variants").fetchone()[0]
    con.close()
    return n


def test_an_unrecognised_tokenizer_names_the_setting_that_fixes_it(workspace, tiny_model_dir, capsys):
    _converter_or_skip()
    models = write(workspace / "models" / "g.yaml", f"""
        base: {{name: tiny, source: hf_dir, path: {tiny_model_dir}}}
        variants:
          - {{name: tiny-q8, parent: tiny, method: gguf, config: {{quantization: Q8_0}}}}
        """)
    assert main(["build", str(models), "--store", str(workspace / "h.duckdb")]) == 2
    err = capsys.readouterr().err
    assert "converter failed" in err and "tokenizer_pre" in err


def test_a_gguf_base_is_served_as_it_ships_without_dequantizing(workspace, tiny_gguf, monkeypatch):
    """source: gguf with backend llama_cpp: the file is evaluated as it is; nothing is converted."""
    monkeypatch.setenv("HARNESS_CACHE", str(workspace / "cache"))
    models = write(workspace / "models" / "m.yaml", f"base: {{name: tiny-gguf, source: gguf, path: {tiny_gguf}, backend: llama_cpp, "
                                                    "options: {n_ctx: 512}}\n")
    store = str(workspace / "h.duckdb")
    assert main(["run", str(workspace / "suites" / "mc.yaml"), "--models", str(models), "--store", store]) == 0
    con = duckdb.connect(store, read_only=True)
    assert con.execute("SELECT backend, dtype, n_samples FROM runs").fetchall() == [("llama_cpp", "F32", 20)]
    con.close()
    assert not (workspace / "cache" / "base").exists()


def test_scoring_between_generations_leaves_no_stale_cache(tiny_gguf):
    """llama-cpp-python reuses its KV cache for a prompt that shares a prefix with its last one;
    scoring writes that cache too, so after scoring the next generation must not trust it."""
    from harness.backends.llama_cpp import LlamaCppBackend

    lc = LlamaCppBackend(tiny_gguf, n_ctx=512)
    prompt = "Write a tweet for Lumen Coffee.\nBrief: a rainy morning\nTweet:"
    request = [(prompt, " A rainy morning calls for a warm cup.")]
    config = GenerationConfig(max_new_tokens=12)
    before = lc.loglikelihood(request)[0].logprob
    first = lc.generate([prompt], config)[0].text
    lc.loglikelihood([("Write something else entirely, about tea and biscuits and nothing else at all", " today")])
    assert lc.generate([prompt], config)[0].text == first
    assert lc.loglikelihood(request)[0].logprob == pytest.approx(before, abs=1e-6)


def test_a_templated_prompt_is_tokenised_as_transformers_does(tiny_model_dir, tmp_path):
    """A chat template's rendering starts with BOS text and carries the template's markers: llama.cpp
    adds no second BOS and scores it as hf does; the GGUF carries the template the converter read
    from the tokenizer, so both backends lay prompts out alike."""
    import shutil

    from harness.backends.hf import HFBackend
    from harness.backends.llama_cpp import LlamaCppBackend
    from harness.models.chat_template import from_folder, from_gguf
    from harness.models.gguf import convert_hf
    from tests.test_chat_template import TEMPLATE

    _converter_or_skip()
    folder = tmp_path / "chat"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, "chat_template": TEMPLATE}))
    out = tmp_path / "chat.gguf"
    convert_hf(folder, out, "f32", tokenizer_pre="gpt-2")
    template = from_gguf(out)
    assert template is not None and template.hash == from_folder(folder).hash
    prompt = template.render([{"role": "user", "content": "What is two plus two?"}])
    assert prompt.startswith("<bos>")
    lc, hf = LlamaCppBackend(out, n_ctx=512), HFBackend(folder)
    requests = [(prompt, "4"), (prompt, "5")]
    assert [lc.encode_pair(c, x) for c, x in requests] == [hf.encode_pair(c, x) for c, x in requests]
    assert lc.encode_pair(*requests[0])[0].count(lc.llm.token_bos()) == 1
    for a, b in zip(lc.loglikelihood(requests), hf.loglikelihood(requests)):
        assert a.logprob == pytest.approx(b.logprob, abs=1e-3)
    config = GenerationConfig(max_new_tokens=6)
    got, want = lc.generate([prompt], config)[0], hf.generate([prompt], config)[0]
    assert (got.text, got.prompt_tokens) == (want.text, want.prompt_tokens)


PARITY_MODELS = """
base: {{name: tiny, source: hf_dir, path: {model}}}
variants:
  - {{name: tiny-f32, parent: tiny, method: gguf, config: {{quantization: f32, tokenizer_pre: gpt-2}}}}
  - {{name: tiny-q4, parent: tiny, method: gguf, config: {{quantization: Q4_0, tokenizer_pre: gpt-2}}}}
"""

PARITY_REPORT = """
title: runtime parity
variants: [tiny, tiny-f32, tiny-q4, tiny-served]
statistics: {{resamples: 500}}
gate:
  - {{variant: {v}, task: quiz, metric: parent_loglik_diff, max: 0.01, name: "{v} log-likelihoods within 0.01 of the reference runtime"}}
"""


def test_runtime_parity_f32_gguf_passes_and_a_4_bit_export_fails(workspace, tiny_model_dir, capsys):
    """The same weights under llama.cpp (an f32 GGUF export, and that file served as a base with
    `runtime_of:`) agree with transformers within 0.01 nats on every option; a 4-bit export does
    not, and the gate says so."""
    _converter_or_skip()
    store = str(workspace / "h.duckdb")
    models = write(workspace / "models" / "p.yaml", PARITY_MODELS.format(model=tiny_model_dir))
    assert main(["build", str(models), "--store", store]) == 0
    assert main(["run", str(workspace / "suites" / "mc.yaml"), "--models", str(models), "--store", store]) == 0
    con = duckdb.connect(store, read_only=True)
    gguf = con.execute("SELECT artifact_path FROM variants WHERE name = 'tiny-f32'").fetchone()[0]
    con.close()
    served = write(workspace / "models" / "served.yaml",
                   f"base: {{name: tiny-served, source: gguf, path: {gguf}/model.gguf, backend: llama_cpp, runtime_of: tiny}}\n")
    assert main(["run", str(workspace / "suites" / "mc.yaml"), "--models", str(served), "--store", store]) == 0
    con = duckdb.connect(store, read_only=True)
    assert con.execute("SELECT parent_name, method FROM variants WHERE name = 'tiny-served'").fetchone() == ("tiny", "runtime")
    con.close()
    codes = {}
    for v in ("tiny-f32", "tiny-served", "tiny-q4"):
        report = write(workspace / "reports" / f"{v}.yaml", PARITY_REPORT.format(v=v))
        capsys.readouterr()
        codes[v] = main(["gate", str(report), "--store", store])
        assert ("PASS" if codes[v] == 0 else "FAIL") in capsys.readouterr().out
    assert codes == {"tiny-f32": 0, "tiny-served": 0, "tiny-q4": 1}


def test_runtime_of_names_a_variant_in_the_store(workspace, tmp_path, capsys):
    models = write(workspace / "models" / "r.yaml", "base: {name: served, source: fake, runtime_of: nowhere}\n")
    store = tmp_path / "h.duckdb"
    assert main(["run", str(workspace / "suites" / "gen.yaml"), "--models", str(models), "--store", str(store)]) == 2
    assert "base.runtime_of: 'nowhere' is not a variant in the store" in capsys.readouterr().err


LORA_MODELS = """
base: {{name: tiny, source: hf_dir, path: {model}}}
variants:
  - {{name: tuned, parent: tiny, method: adapter, config: {{path: {adapter}}}}}
  - {{name: tuned2, parent: tuned, method: adapter, config: {{path: {adapter2}}}}}
  - {{name: tuned2-lora, parent: tuned2, method: gguf_lora, config: {{quantization: f32, adapter_type: f32, tokenizer_pre: gpt-2}}}}
  - {{name: tuned-lora-f32, parent: tuned, method: gguf_lora, config: {{quantization: f32, adapter_type: f32, tokenizer_pre: gpt-2}}}}
  - {{name: tuned-lora-q8, parent: tuned, method: gguf_lora, config: {{quantization: Q8_0, tokenizer_pre: gpt-2}}}}
  - {{name: tiny-gguf, parent: tiny, method: gguf, config: {{quantization: f32, tokenizer_pre: gpt-2}}}}
"""


def test_a_lora_adapter_shipped_as_a_gguf_lora_on_a_gguf_base(workspace, tiny_model_dir, tmp_path):
    """The adapter as a GGUF LoRA applied by llama.cpp at load: over an f32 base it computes what
    transformers + PEFT compute (option log-likelihoods within 0.001); over a Q8_0 base it stays
    close; a chain of two adapters ships as one stacked LoRA with the same parity; and the adapter
    is really applied (the base alone scores differently)."""
    _converter_or_skip()
    pytest.importorskip("peft")
    from tests.test_vllm import _adapter

    adapter, adapter2 = _adapter(tiny_model_dir, tmp_path / "lora", 3), _adapter(tiny_model_dir, tmp_path / "lora2", 4)
    models = write(workspace / "models" / "l.yaml", LORA_MODELS.format(model=tiny_model_dir, adapter=adapter, adapter2=adapter2))
    store = str(workspace / "h.duckdb")
    assert main(["build", str(models), "--store", store]) == 0
    assert main(["run", str(workspace / "suites" / "mc.yaml"), "--models", str(models), "--store", store]) == 0
    con = duckdb.connect(store, read_only=True)
    built = {r[0]: (r[1], json.loads(r[2])) for r in con.execute("SELECT name, artifact_kind, metrics FROM variants "
                                                                  "WHERE method = 'gguf_lora'").fetchall()}
    diff = dict(con.execute("""SELECT r.variant, avg(f.value) FROM fidelity f JOIN runs r USING (run_id)
                               WHERE f.metric = 'parent_loglik_diff' GROUP BY 1""").fetchall())
    details = dict(con.execute("SELECT variant, backend_details FROM runs WHERE task = 'quiz'").fetchall())
    lls = {v: [json.loads(d)["loglikelihoods"] for (d,) in con.execute(
        "SELECT s.details FROM samples s JOIN runs r USING (run_id) WHERE r.variant = ? AND r.task = 'quiz' ORDER BY s.sample_id",
        [v]).fetchall()] for v in ("tuned-lora-f32", "tiny-gguf")}
    con.close()
    assert built["tuned-lora-f32"][0] == "gguf_lora" and built["tuned-lora-q8"][1]["quantization"] == "Q8_0"
    assert built["tuned-lora-q8"][1]["lora_bytes"] > 0 and built["tuned-lora-q8"][1]["gguf_bytes"] < built["tuned-lora-f32"][1]["gguf_bytes"]
    assert "adapter.gguf" in json.loads(details["tuned-lora-f32"])["lora"]
    assert diff["tuned-lora-f32"] < 1e-3  # parity with transformers + PEFT (measured: 4e-5)
    assert diff["tuned-lora-q8"] < 0.05  # measured: 4e-3
    assert diff["tuned2-lora"] < 1e-3 and built["tuned2-lora"][1]["adapters_stacked"] == 2  # two stacked adapters as one LoRA
    assert diff["tiny-gguf"] < 0.01  # the plain export agrees with its own parent, the base
    gap = max(abs(a - b) for x, y in zip(lls["tuned-lora-f32"], lls["tiny-gguf"]) for a, b in zip(x, y))
    assert gap > 0.05  # the adapter changes what the model computes: it was applied
    # Generation (a second llama.cpp context, for batches) applies the adapter too: each greedy
    # output is what the adapted model scores as greedy, and differs from the base's output.
    from harness.backends.llama_cpp import LlamaCppBackend

    files = json.loads(details["tuned-lora-f32"])
    tuned, base = LlamaCppBackend(files["gguf"], n_ctx=512, lora=files["lora"]), LlamaCppBackend(files["gguf"], n_ctx=512)
    prompts = ["Question: what is two plus two?\nAnswer:", "Write a tweet for Lumen Coffee.\nBrief: rain\nTweet:"]
    outs = tuned.generate(prompts, GenerationConfig(max_new_tokens=6))
    assert all(r.is_greedy for r in tuned.loglikelihood([(p, o.text) for p, o in zip(prompts, outs) if o.text]))
    assert [o.text for o in outs] != [o.text for o in base.generate(prompts, GenerationConfig(max_new_tokens=6))]


SHIP_MODELS = """
base: {{name: tiny, source: hf_dir, path: {model}}}
variants:
  - {{name: tiny-f32, parent: tiny, method: gguf, config: {{quantization: f32, tokenizer_pre: gpt-2}}}}
  - {{name: tiny-q4, parent: tiny, method: gguf, config: {{quantization: Q4_0, tokenizer_pre: gpt-2}}}}
"""


def test_ship_recommends_the_smallest_candidate_that_keeps_the_parent(workspace, tiny_model_dir, capsys):
    """f32 keeps the parent's log-likelihoods and Q4_0 does not: the f32 file is the one to ship;
    with a budget it does not fit, nothing ships (exit 1), and the table says why."""
    _converter_or_skip()
    write(workspace / "models" / "s.yaml", SHIP_MODELS.format(model=tiny_model_dir))
    write(workspace / "suites" / "serve.yaml", """
        name: serve
        tasks:
          - name: serving
            type: latency
            data: {format: jsonl, path: ../d.jsonl}
            id_field: id
            prompt: {template: "{{ topic }}"}
            generation: {max_new_tokens: 4}
            latency: {concurrency: [1], warmup: 0}
        """)
    write(workspace / "d.jsonl", '{"id": "a", "topic": "the cat sat"}\n{"id": "b", "topic": "a dog ran"}\n')
    sweep = write(workspace / "sweep.yaml", """
        models: models/s.yaml
        parent: tiny
        candidates: [tiny-q4, tiny-f32]
        suites: [suites/mc.yaml, suites/serve.yaml]
        rules:
          - {task: quiz, metric: parent_loglik_diff, max: 0.01}
        statistics: {resamples: 300}
        """)
    store = str(workspace / "h.duckdb")
    assert main(["ship", str(sweep), "--store", store]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("tiny-")}
    assert "<- ship this" in rows["tiny-f32"] and "fail" in rows["tiny-q4"] and "pass" in rows["tiny-f32"]
    assert "ship: tiny-f32; exit code 0" in out
    size = float(rows["tiny-f32"].split()[1])
    assert 0.3 < size < 1.0 and rows["tiny-f32"].split()[2] != "n/a"  # MB, and tokens/s from the latency task
    assert main(["ship", str(sweep), "--store", store, "--budget-mb", "0.1"]) == 1
    out = capsys.readouterr().out
    assert "over the 0.1 MB budget" in out and "nothing to ship" in out



IMATRIX_MODELS = """
base: {{name: tiny, source: hf_dir, path: {model}}}
variants:
  - {{name: tiny-q4, parent: tiny, method: gguf, config: {{quantization: Q4_0, tokenizer_pre: gpt-2}}}}
  - name: tiny-q4-imatrix
    parent: tiny
    method: gguf
    config:
      quantization: Q4_0
      tokenizer_pre: gpt-2
      imatrix: {{path: {data}, text: "Write a tweet for Lumen Coffee.\\nBrief: {{{{ topic }}}}\\nTweet: {{{{ tweet }}}}", ctx: 32}}
"""


def _tools_or_skip():
    from harness.errors import ConfigError
    from harness.models.gguf_imatrix import tool_path

    try:
        tool_path("llama-imatrix")
    except ConfigError as exc:
        pytest.skip(str(exc))


def test_an_importance_matrix_from_the_variants_own_data_steers_the_quantization(workspace, tiny_model_dir, capsys):
    """llama-imatrix over the brand tweets, then llama-quantize --imatrix: the build records what
    calibrated it, the file differs from the plain Q4_0 one and is served; calibration text shorter
    than one chunk is refused."""
    _converter_or_skip()
    _tools_or_skip()
    from harness.backends.llama_cpp import LlamaCppBackend

    data = REPO_DATA / "brand" / "train.jsonl"
    models = write(workspace / "models" / "i.yaml", IMATRIX_MODELS.format(model=tiny_model_dir, data=data))
    store = str(workspace / "h.duckdb")
    assert main(["build", str(models), "--store", store]) == 0
    con = duckdb.connect(store, read_only=True)
    built = {r[0]: (json.loads(r[1]), r[2]) for r in con.execute("SELECT name, metrics, artifact_path FROM variants "
                                                                  "WHERE method = 'gguf'").fetchall()}
    con.close()
    used = built["tiny-q4-imatrix"][0]["imatrix"]
    assert used["rows"] == 187 and used["tokens"] > 4000 and used["chunks"] == used["tokens"] // 32
    assert len(used["imatrix_sha256"]) == 64 and used["seconds"] > 0
    files = {v: Path(built[v][1]) / "model.gguf" for v in ("tiny-q4", "tiny-q4-imatrix")}
    assert files["tiny-q4"].read_bytes() != files["tiny-q4-imatrix"].read_bytes()
    # served like any export (whether it is closer to its parent is measured on real models: on this
    # random 2-layer model at Q4_0 it is not, 9.5 against 8.7 summed |dLL| over 150 tweets)
    assert LlamaCppBackend(files["tiny-q4-imatrix"], n_ctx=512).loglikelihood([("Tweet:", " coffee")])[0].n_tokens >= 1
    short = write(workspace / "models" / "short.yaml", IMATRIX_MODELS.format(model=tiny_model_dir, data=data)
                  .replace("ctx: 32", "ctx: 128, limit: 1"))
    capsys.readouterr()
    assert main(["build", str(short), "--store", store]) == 2
    err = capsys.readouterr().err
    assert "1 rows of" in err and "less than one chunk of 128" in err and "config.imatrix" in err


def test_imatrix_needs_a_quantized_type_its_tools_and_enough_text(workspace, tiny_model_dir, tmp_path, capsys, monkeypatch):
    models = write(workspace / "models" / "bad.yaml", f"""
        base: {{name: tiny, source: hf_dir, path: {tiny_model_dir}}}
        variants:
          - {{name: t, parent: tiny, method: gguf, config: {{quantization: f16, imatrix: {{path: x.jsonl, text: "{{{{ a }}}}"}}}}}}
        """)
    assert main(["build", str(models), "--store", str(tmp_path / "h.duckdb")]) == 2
    assert "imatrix applies to a quantized export; quantization is f16" in capsys.readouterr().err
    monkeypatch.setenv("HARNESS_LLAMA_CPP_TOOLS", str(tmp_path / "nowhere"))
    data = REPO_DATA / "brand" / "train.jsonl"
    models = write(workspace / "models" / "bad.yaml", f"""
        base: {{name: tiny, source: hf_dir, path: {tiny_model_dir}}}
        variants:
          - {{name: t, parent: tiny, method: gguf, config: {{quantization: Q4_0, imatrix: {{path: {data}, text: "{{{{ topic }}}}"}}}}}}
        """)
    assert main(["build", str(models), "--store", str(tmp_path / "h.duckdb")]) == 2
    err = capsys.readouterr().err
    assert "llama-imatrix is not installed" in err and "make llama-cpp" in err
    if (tmp_path / "h.duckdb").exists():  # nothing was built
        con = duckdb.connect(str(tmp_path / "h.duckdb"), read_only=True)
        assert con.execute("SELECT count(*) FROM variants WHERE name = 't'").fetchone() == (0,)
        con.close()
