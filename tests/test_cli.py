"""The CLI as a user drives it: help everywhere, instant start, exit codes, errors without tracebacks."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness.cli import build_parser, main
from tests.conftest import REPO, write

COMMANDS = ["validate", "build", "run", "report", "gate", "plan", "audit", "list", "export", "flips"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert "usage: harness " + command in capsys.readouterr().out


def test_parser_lists_every_command():
    help_text = build_parser().format_help()
    for command in COMMANDS:
        assert command in help_text


def test_help_imports_nothing_heavy():
    code = ("import sys; from harness.cli import build_parser; build_parser().format_help(); "
            "heavy = [m for m in ('torch', 'transformers', 'duckdb', 'jinja2', 'pydantic', 'numpy') if m in sys.modules]; "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_validate_every_shipped_file(capsys):
    import os

    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        code = main(["validate"])
    finally:
        os.chdir(cwd)
    out = capsys.readouterr().out
    assert code == 0, out
    for name in ("suites/mmlu_sample.yaml", "suites/brand_voice.yaml", "models/demo.yaml", "reports/demo.yaml"):
        assert f"ok   {name}" in out


def test_bad_suite_exits_2_with_one_line_error_and_writes_nothing(tmp_path, capsys):
    suite = write(tmp_path / "suites" / "bad.yaml", """
        name: bad
        tasks:
          - name: t
            type: generation
            data: {format: jsonl, path: missing.jsonl}
            prompt: {template: "x", reference: "y"}
            scorers: [rouge]
        """)
    models = write(tmp_path / "models" / "m.yaml", "base: {name: f, source: fake}\n")
    store = tmp_path / "h.duckdb"
    code = main(["run", str(suite), "--models", str(models), "--store", str(store)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("Error: ") and "missing.jsonl: data file not found" in err
    assert "Traceback" not in err
    assert not store.exists()


def test_unknown_backend_option_and_variant_are_errors(workspace, capsys):
    models = write(workspace / "models" / "m.yaml", "base: {name: f, source: fake}\n")
    code = main(["run", str(workspace / "suites" / "gen.yaml"), "--models", str(models), "--variant", "g",
                 "--store", str(workspace / "h.duckdb")])
    assert code == 2
    assert "unknown variant 'g'" in capsys.readouterr().err


def test_validate_reports_invalid_file(tmp_path, capsys):
    write(tmp_path / "reports" / "r.yaml", "title: r\nvariants: []\n")
    assert main(["validate", str(tmp_path / "reports")]) == 2
    out = capsys.readouterr().out
    assert "FAIL" in out and "variants" in out


def test_list_registered_components(capsys):
    assert main(["list", "scorers"]) == 0
    out = capsys.readouterr().out
    assert "rouge" in out and "harness.scorers.text_overlap:rouge" in out
    assert main(["list", "backends"]) == 0
    out = capsys.readouterr().out
    assert "hf                 transformers in-process" in out and "(options: batch_size, device_map, dtype, max_length, max_memory, prefix_reuse)" in out
    assert "llama_cpp" in out and "openai" in out and "vllm" in out


def test_list_recipes_shows_config_keys(capsys):
    assert main(["list", "recipes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    sft = lines.index(next(line for line in lines if line.startswith("sft_lora ")))
    assert "Supervised fine-tuning with a LoRA adapter" in lines[sft]
    assert "config (SFTLoraConfig):" in lines[sft + 1]
    keys = {line.split()[0]: line for line in lines[sft + 2:] if line.startswith(" " * 21)}
    # key, type, default, the first sentence of the key's docstring (nested models dotted)
    assert {"data", "data.path", "lora", "lora.r", "training.max_steps", "qlora"} <= set(keys)
    assert keys["lora.r"].split()[1:4] == ["integer", "default:", "8"]
    assert "Rank of the update BA." in keys["lora.r"]
    assert "required" in keys["data.path"] and "JSONL file, relative to the models file." in keys["data.path"]
    assert "default: 60" in keys["training.max_steps"]
    # recipes sharing a config model list its keys once
    assert any(line.startswith("ipo ") for line in lines)
    assert any("config (PreferenceConfig): the same keys as dpo" in line for line in lines)


def test_list_scorers_shows_option_keys(capsys):
    assert main(["list", "scorers"]) == 0
    out = capsys.readouterr().out
    assert "options: none (written by name: `- rouge`)" in out
    assert "options (`- reward: {...}`, RewardScorerSpec):" in out
    assert any(line.split()[:4] == ["batch_size", "integer", "default:", "8"] for line in out.splitlines())
    assert "checks[].name" in out  # a list of models: the rubric's checks


def test_read_commands_on_missing_store_exit_2(tmp_path, capsys):
    report = write(tmp_path / "r.yaml", "title: r\nvariants: [a]\ngate: [{variant: a, task: t, metric: acc, min: 0}]\n")
    assert main(["gate", str(report), "--store", str(tmp_path / "none.duckdb")]) == 2
    assert "no results store" in capsys.readouterr().err
