"""The command line users already type: `harness init`, `harness run --model` without a models
file, run-time overrides recorded in the run, `--json` on run and list, JSON Schemas of the
three file kinds, colour for verdicts."""

from __future__ import annotations

import json

import pytest
import yaml

from harness.cli import main
from harness.store.db import Store
from tests.conftest import write


def _tasks(store) -> dict[str, dict]:
    with Store(store, read_only=True) as s:
        return {r["task"]: {**r, "task_config": json.loads(r["task_config"])}
                for r in s.query("SELECT task, task_config, seed, suite_hash, run_key, variant FROM latest_runs")}


def test_init_then_run_with_model_on_the_tiny_model(tiny_model_dir, tmp_path, capsys):
    ws = tmp_path / "ws"
    assert main(["init", str(ws), "--model", f"hf:{tiny_model_dir}"]) == 0
    for rel in ("suites/starter.yaml", "models/model.yaml", "reports/starter.yaml", "data/quiz.jsonl", "schemas/suite.schema.json"):
        assert (ws / rel).is_file(), rel
    assert main(["validate", str(ws / "suites"), str(ws / "models"), str(ws / "reports")]) == 0
    store = ws / ".harness" / "h.duckdb"
    assert main(["run", str(ws / "suites" / "starter.yaml"), "--model", f"hf:{tiny_model_dir}", "--store", str(store)]) == 0
    runs = _tasks(store)
    assert set(runs) == {"quiz", "briefs"} and {r["variant"] for r in runs.values()} == {tiny_model_dir.name}
    written = store.parent / "models" / f"{tiny_model_dir.name}.yaml"
    assert yaml.safe_load(written.read_text())["base"] == {"name": tiny_model_dir.name, "source": "hf_dir", "path": str(tiny_model_dir)}
    # the workspace's own models file names the same model: the runs are reused, not redone
    capsys.readouterr()
    assert main(["run", str(ws / "suites" / "starter.yaml"), "--models", str(ws / "models" / "model.yaml"), "--store", str(store)]) == 0
    assert _tasks(store)["quiz"]["run_key"] == runs["quiz"]["run_key"]
    assert main(["init", str(ws), "--model", "fake"]) == 2  # nothing overwritten without --force


def test_model_with_peft_adapter_is_built_and_evaluated(tiny_model_dir, tmp_path):
    pytest.importorskip("peft")
    from tests.test_vllm import _adapter

    adapter = _adapter(tiny_model_dir, tmp_path / "lora", 1)
    suite = write(tmp_path / "s.yaml", """
        name: ppl
        tasks:
          - name: held_out
            type: perplexity
            data: {format: jsonl, path: t.jsonl}
            prompt: {template: "{{ text }}"}
        """)
    write(tmp_path / "t.jsonl", '{"text": "the cat sat on the mat"}\n{"text": "a dog ran in the park"}\n')
    store = tmp_path / "h.duckdb"
    bad = write(tmp_path / "bad.yaml", "name: bad\ntasks: [{name: x, type: perplexity}]\n")
    assert main(["run", str(bad), "--model", f"hf:{tiny_model_dir},name=tiny,peft={adapter}", "--store", str(store)]) == 2
    assert not (tmp_path / "artifacts").exists()  # the suite is checked before the adapter is built
    assert main(["run", str(suite), "--model", f"hf:{tiny_model_dir},name=tiny,peft={adapter}", "--store", str(store)]) == 0
    with Store(store, read_only=True) as s:
        assert [r["variant"] for r in s.query("SELECT variant FROM latest_runs")] == ["tiny-lora"]
        assert s.query("SELECT parent_name, method FROM variants WHERE name = 'tiny-lora'")[0] == {"parent_name": "tiny", "method": "adapter"}


def test_overrides_are_recorded_in_the_run(workspace, tmp_path):
    store = tmp_path / "h.duckdb"
    suites = [str(workspace / "suites" / "mc.yaml"), str(workspace / "suites" / "gen.yaml")]
    assert main(["run", *suites, "--model", "fake", "--store", str(store)]) == 0
    plain = _tasks(store)
    assert main(["run", *suites, "--model", "fake", "--store", str(store), "--seed", "7", "--num-fewshot", "0",
                 "--gen-kwargs", "max_new_tokens=4,temperature=0.5,top_p=0.9,stop=.|!", "--batch-size", "2"]) == 0
    over = _tasks(store)
    g = over["tweets"]["task_config"]["generation"]
    assert (g["max_new_tokens"], g["temperature"], g["top_p"], g["stop"], g["batch_size"]) == (4, 0.5, 0.9, [".", "!"], 2)
    assert over["quiz"]["task_config"]["fewshot"]["k"] == 0 and plain["quiz"]["task_config"]["fewshot"]["k"] == 2
    assert over["quiz"]["seed"] == 7 and plain["quiz"]["seed"] != 7
    assert over["quiz"]["run_key"] != plain["quiz"]["run_key"]  # a different evaluation, never reused for the plain one


@pytest.mark.parametrize("extra, said", [
    (["--gen-kwargs", "bogus=1"], "bogus"),
    (["--gen-kwargs", "temperature"], "key=value"),
    (["--gen-kwargs", "temperature=-1"], "temperature"),
    (["--batch-size", "auto", "--models", "m.yaml"], "--batch-size auto goes with --model"),
    (["--batch-size", "0"], "--batch-size 0"),
    (["--num-fewshot", "-1"], "--num-fewshot"),
])
def test_bad_overrides_are_exit_2_before_anything_runs(workspace, tmp_path, capsys, extra, said):
    store = tmp_path / "h.duckdb"
    args = ["run", str(workspace / "suites" / "gen.yaml"), "--store", str(store)] + extra
    if "--models" not in extra:
        args += ["--model", "fake"]
    assert main(args) == 2
    assert said in capsys.readouterr().err
    assert not store.exists() or not _tasks(store)


def test_num_fewshot_needs_a_fewshot_split(workspace, tmp_path, capsys):
    assert main(["run", str(workspace / "suites" / "gen.yaml"), "--model", "fake", "--num-fewshot", "3",
                 "--store", str(tmp_path / "h.duckdb")]) == 2
    assert "has no `fewshot:` block" in capsys.readouterr().err


@pytest.mark.parametrize("spec, said", [("nope:x", "unknown kind 'nope'"), ("gguf:/no/such.gguf", "no such GGUF file"),
                                        ("endpoint:http://127.0.0.1:9/v1", "model=NAME"), ("hf:", "needs a Hub id"),
                                        ("fake,shout", "key=value"), ("hf:x,peft=/nowhere", "adapter_config.json")])
def test_bad_model_specs_are_exit_2(workspace, tmp_path, capsys, spec, said):
    assert main(["run", str(workspace / "suites" / "gen.yaml"), "--model", spec, "--store", str(tmp_path / "h.duckdb")]) == 2
    assert said in capsys.readouterr().err


def test_model_and_models_together_is_exit_2(workspace, tmp_path, capsys):
    models = write(tmp_path / "m.yaml", "base: {name: f, source: fake}\n")
    assert main(["run", str(workspace / "suites" / "gen.yaml"), "--model", "fake", "--models", str(models),
                 "--store", str(tmp_path / "h.duckdb")]) == 2
    assert "leave out --models" in capsys.readouterr().err


def test_json_output_of_run_and_list(workspace, tmp_path, capsys):
    store = tmp_path / "h.duckdb"
    assert main(["run", str(workspace / "suites" / "mc.yaml"), "--model", "fake", "--store", str(store), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)  # stdout is one JSON document
    acc = next(f for f in out["figures"] if f["metric"] == "acc")
    assert acc["low"] <= acc["mean"] <= acc["high"] and acc["n"] > 0 and acc["variant"] == "fake" and acc["run_id"]
    assert main(["list", "runs", "--json", "--store", str(store)]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert runs[0]["run_id"] == acc["run_id"] and isinstance(runs[0]["metrics"], list)
    assert main(["list", "scorers", "--json"]) == 0
    assert any(s["name"] == "acc" for s in json.loads(capsys.readouterr().out))


def test_json_schemas_check_the_starter_files(tmp_path):
    import jsonschema

    ws = tmp_path / "ws"
    assert main(["init", str(ws), "--model", "fake"]) == 0
    for kind, rel in (("suite", "suites/starter.yaml"), ("models", "models/model.yaml"), ("report", "reports/starter.yaml")):
        text = (ws / rel).read_text()
        assert text.startswith(f"# yaml-language-server: $schema=../schemas/{kind}.schema.json")
        schema = json.loads((ws / "schemas" / f"{kind}.schema.json").read_text())
        data = yaml.safe_load(text)
        jsonschema.validate(data, schema)
        with pytest.raises(jsonschema.ValidationError):  # unknown keys are rejected, as the loader rejects them
            jsonschema.validate({**data, "colour": "blue"}, schema)
    assert main(["schema", "--json-schema", str(tmp_path / "s")]) == 0
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["models.schema.json", "report.schema.json", "suite.schema.json"]


def test_verdict_colour_only_on_a_terminal(monkeypatch):
    import io

    from harness.report.gate_output import paint, use_colour

    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert use_colour(Tty()) and not use_colour(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not use_colour(Tty())
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert use_colour(io.StringIO())
    assert paint("PASS", "pass", True) == "\033[1m\033[32mPASS\033[0m" and paint("PASS", "pass", False) == "PASS"


@pytest.mark.parametrize("change, said", [
    ({"candidates": ["a"]}, "also a candidate"),
    ({"rules": [{"variant": "b", "task": "t", "metric": "acc", "min": 0.5}]}, "leave out variant"),
    ({"rules": [{"task": "t", "metric": "acc"}]}, "say what the rule checks"),
    ({"rules": []}, "rules"),
])
def test_bad_sweep_files_are_exit_2(tmp_path, capsys, change, said):
    sweep = {"models": "m.yaml", "parent": "a", "candidates": ["b"], "suites": ["s.yaml"],
             "rules": [{"task": "t", "metric": "acc", "min": 0.5}], **change}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    assert main(["ship", str(path), "--store", str(tmp_path / "h.duckdb")]) == 2
    assert said in capsys.readouterr().err
    assert not (tmp_path / "h.duckdb").exists()


def test_a_sweep_whose_models_file_is_missing_is_exit_2(tmp_path, capsys):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"models": "nowhere.yaml", "parent": "a", "candidates": ["b"], "suites": ["s.yaml"],
                                    "rules": [{"task": "t", "metric": "acc", "min": 0.5}]}))
    assert main(["ship", str(path), "--store", str(tmp_path / "h.duckdb")]) == 2
    assert "nowhere.yaml not found" in capsys.readouterr().err
