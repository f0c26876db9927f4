"""The core install (no torch, transformers, tokenizers or safetensors) reads and writes stores:
validate, plan, report, gate, list, export and store merge run with those packages made
unimportable; a command that needs a model exits 2 naming the `models` extra."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import REPO, write
from tests.test_pairing import SUITE, items

BLOCK = textwrap.dedent("""
    import sys
    BLOCKED = {"torch", "transformers", "tokenizers", "safetensors", "peft", "trl", "bitsandbytes", "accelerate"}
    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named '{name}'", name=name)
    sys.meta_path.insert(0, Blocker())
    from harness.cli import main
    sys.exit(main(sys.argv[1:]))
    """)


def light(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK, *args], capture_output=True, text=True, cwd=REPO, timeout=300)


def test_store_commands_run_without_model_packages(tmp_path):
    from harness.cli import main

    write(tmp_path / "s.yaml", SUITE)
    items(tmp_path / "items.jsonl", 0, 12)
    write(tmp_path / "a.yaml", "base: {name: a, source: fake, options: {favour: [A]}}\n")
    write(tmp_path / "b.yaml", "base: {name: b, source: fake, options: {favour: [B]}}\n")
    for v in ("a", "b"):  # written by the full install (a model job)
        assert main(["run", str(tmp_path / "s.yaml"), "--models", str(tmp_path / f"{v}.yaml"), "--store", str(tmp_path / f"{v}.duckdb")]) == 0
    report = write(tmp_path / "r.yaml", "title: t\nvariants: [a, b]\nstatistics: {resamples: 100}\ngate:\n"
                                        "  - {variant: b, baseline: a, task: quiz, metric: acc, max_drop: 0.1}\n")
    merged = str(tmp_path / "all.duckdb")
    for args, code in [(["store", "merge", str(tmp_path / "a.duckdb"), str(tmp_path / "b.duckdb"), "--into", merged], 0),
                       (["validate", str(tmp_path / "s.yaml"), str(report)], 0),
                       (["report", str(report), "--store", merged, "--out", str(tmp_path / "r.html")], 0),
                       (["gate", str(report), "--store", merged], 1),
                       (["plan", str(report), "--store", merged], 0),
                       (["list", "runs", "--store", merged], 0),
                       (["export", str(tmp_path / "snap"), "--store", merged], 0)]:
        done = light(*args)
        assert done.returncode == code, (args, done.stderr[-2000:])


def test_a_model_command_without_the_models_extra_names_it(tmp_path, tiny_model_dir):
    models = write(tmp_path / "m.yaml", f"base: {{name: tiny, source: hf_dir, path: {tiny_model_dir}}}\n")
    write(tmp_path / "s.yaml", SUITE)
    items(tmp_path / "items.jsonl", 0, 4)
    done = light("run", str(tmp_path / "s.yaml"), "--models", str(models), "--store", str(tmp_path / "h.duckdb"))
    assert done.returncode == 2, done.stderr[-2000:]
    assert "needs the package 'torch'" in done.stderr and "pip install 'harness[models]'" in done.stderr
    assert "Traceback" not in done.stderr
    if (tmp_path / "h.duckdb").exists():  # checked before any run is written
        import duckdb

        con = duckdb.connect(str(tmp_path / "h.duckdb"), read_only=True)
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
        con.close()


def test_a_fresh_core_install_reports_gates_and_merges(tmp_path):
    """`pip install harness` (the core, into a new virtualenv, from the package index) runs report,
    gate and store merge on stores a model job wrote; torch and transformers are not there."""
    from harness.cli import main

    write(tmp_path / "s.yaml", SUITE)
    items(tmp_path / "items.jsonl", 0, 12)
    for v, favour in (("a", "A"), ("b", "B")):
        write(tmp_path / f"{v}.yaml", f"base: {{name: {v}, source: fake, options: {{favour: [{favour}]}}}}\n")
        assert main(["run", str(tmp_path / "s.yaml"), "--models", str(tmp_path / f"{v}.yaml"), "--store", str(tmp_path / f"{v}.duckdb")]) == 0
    report = write(tmp_path / "r.yaml", "title: t\nvariants: [a, b]\nstatistics: {resamples: 100}\ngate:\n"
                                        "  - {variant: b, baseline: a, task: quiz, metric: acc, max_drop: 0.1}\n")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(REPO)],
                             capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stderr[-3000:]
    for package in ("torch", "transformers", "tokenizers", "safetensors", "ray"):
        absent = subprocess.run([str(venv / "bin" / "python"), "-c", f"import {package}"], capture_output=True, cwd=tmp_path)
        assert absent.returncode != 0, f"{package} came with the core install"
    harness = str(venv / "bin" / "harness")
    merged = str(tmp_path / "all.duckdb")
    for args, code in [(["store", "merge", str(tmp_path / "a.duckdb"), str(tmp_path / "b.duckdb"), "--into", merged], 0),
                       (["report", str(report), "--store", merged, "--out", str(tmp_path / "r.html")], 0),
                       (["gate", str(report), "--store", merged], 1)]:
        done = subprocess.run([harness, *args], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                              env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HARNESS_PROGRESS": "0"})
        assert done.returncode == code, (args, done.stdout[-2000:], done.stderr[-2000:])
    assert (tmp_path / "r.html").stat().st_size > 10_000
