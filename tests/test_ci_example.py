"""examples/ci/harness-gate.yml: every `run:` step of the GitHub Actions workflow, run as written
(the install step aside) in a copy of its files: validate, build, run, gate (JUnit, JSON and the
markdown posted to the pull request), report."""

from __future__ import annotations

import shlex
import shutil

import yaml

from harness.cli import main
from tests.conftest import REPO


def test_the_ci_example_workflow_runs_as_written(tmp_path, monkeypatch, capsys):
    workflow = yaml.safe_load((REPO / "examples" / "ci" / "harness-gate.yml").read_text(encoding="utf-8"))
    job = workflow["jobs"]["gate"]
    steps = [s["run"] for s in job["steps"] if "run" in s and not s["run"].startswith("pip install")]
    assert [shlex.split(s)[1] for s in steps] == ["validate", "build", "run", "gate", "report"]
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    for key, value in job["env"].items():
        monkeypatch.setenv(key, value)
    codes = {}
    for step in steps:
        args = shlex.split(step)
        assert args[0] == "harness"
        codes[args[1]] = main(args[1:])
    assert codes == {"validate": 0, "build": 0, "run": 0, "gate": 0, "report": 0}, capsys.readouterr().err
    assert (tmp_path / ".harness" / "harness.duckdb").is_file()  # the store the workflow caches
    assert "the quiz stays above 0.6" in (tmp_path / "gate.md").read_text()
    assert (tmp_path / "gate.xml").is_file() and (tmp_path / "gate.json").is_file() and (tmp_path / "report.html").is_file()
