"""Task kinds as a contract: a plugin kind is one module plus one entry point, used from YAML
end to end (its options block validated by its own model), and the built-in kinds declare what
they need instead of being chosen by type strings."""

from __future__ import annotations

import importlib
import sys
import textwrap

import duckdb
import pytest

from harness import registry
from harness.cli import main
from tests.conftest import write

TOY_KIND = '''
"""A toy task kind: each item's prompt is generated, and the output's length is its metric."""
import json

from harness.backends.base import GENERATE, GenerationConfig
from harness.config.loader import Strict
from harness.stats.metricspec import KindRows, Metric, TaskKind
from harness.store.db import SampleRow, ScoreRow


class ToyOptions(Strict):
    """Options of the `toy` kind."""

    min_chars: int = 1
    """An output at least this long counts as long enough."""


def rows(backend, task, run):
    options = task.spec.parsed_options()
    outs = backend.generate([s.prompt for s in task.samples], GenerationConfig(max_new_tokens=8))
    samples = [SampleRow(run.run_id, s.id, s.prompt, None, o.text, json.dumps({})) for s, o in zip(task.samples, outs)]
    scores = [ScoreRow(run.run_id, s.id, "toy", m, v) for s, o in zip(task.samples, outs)
              for m, v in (("chars", float(len(o.text))), ("long_enough", float(len(o.text) >= options.min_chars)))]
    return KindRows(samples, scores)


KIND = TaskKind("toy", "output length of each generated prompt",
                metrics=(Metric("chars", "output characters", "none", low=0),
                         Metric("long_enough", "output at least min_chars long", "higher", "binary", low=0, high=1)),
                rows=rows, needs=frozenset({GENERATE}), options=ToyOptions)
'''


@pytest.fixture
def toy_plugin(tmp_path):
    """The toy kind installed the way a plugin package is: a module and a dist-info whose entry
    point names it in the `harness.plugins` group."""
    site = tmp_path / "site"
    write(site / "toy_kind.py", TOY_KIND)
    write(site / "toy_kind-0.1.dist-info" / "METADATA", "Metadata-Version: 2.1\nName: toy-kind\nVersion: 0.1\n")
    write(site / "toy_kind-0.1.dist-info" / "entry_points.txt", "[harness.plugins]\ntask_kind.toy = toy_kind:KIND\n")
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    registry._plugins.cache_clear()
    yield tmp_path
    sys.path.remove(str(site))
    sys.modules.pop("toy_kind", None)
    registry._plugins.cache_clear()


def _suite(tmp_path, options: str) -> str:
    write(tmp_path / "items.jsonl", "".join(f'{{"q": "question {i}"}}\n' for i in range(6)))
    return str(write(tmp_path / "toy.yaml", textwrap.dedent(f"""
        name: toy-suite
        tasks:
          - name: lengths
            type: toy
            data: {{format: jsonl, path: items.jsonl}}
            prompt: {{template: "{{{{ q }}}}"}}
            options: {options}
        """)))


def test_a_plugin_task_kind_runs_from_yaml_end_to_end(toy_plugin, capsys):
    tmp = toy_plugin
    models = write(tmp / "m.yaml", "base: {name: fake-a, source: fake, options: {default_output: 'abcdef'}}\n")
    suite = _suite(tmp, "{min_chars: 5}")
    store = tmp / "h.duckdb"
    assert main(["run", suite, "--models", str(models), "--store", str(store)]) == 0
    con = duckdb.connect(str(store), read_only=True)
    rows = dict(con.execute("SELECT metric, avg(value) FROM scores GROUP BY metric").fetchall())
    task_type = con.execute("SELECT task_type FROM runs").fetchone()[0]
    con.close()
    assert task_type == "toy"
    assert rows == {"chars": 6.0, "long_enough": 1.0}
    assert main(["list", "task_kinds"]) == 0
    assert "toy" in capsys.readouterr().out


def test_a_plugin_kinds_options_are_checked_by_its_model(toy_plugin, capsys):
    tmp = toy_plugin
    assert main(["validate", _suite(tmp, "{min_chars: 5, max_chars: 9}")]) == 2
    err = "".join(capsys.readouterr())
    assert "tasks[0]" in err and "max_chars" in err


def test_an_unknown_task_type_names_the_kinds(tmp_path, capsys):
    suite = write(tmp_path / "s.yaml", """
        name: s
        tasks:
          - {name: t, type: generaton, data: {format: jsonl, path: x.jsonl}, prompt: {template: x}, generation: {n: 1}}
        """)
    assert main(["validate", str(suite)]) == 2
    err = "".join(capsys.readouterr())
    assert "unknown task type 'generaton'" in err and "Did you mean 'generation'" in err


def test_each_kind_takes_only_its_own_block(tmp_path, capsys):
    """A discriminated union: a multiple-choice task has no `generation:` block to set."""
    suite = write(tmp_path / "s.yaml", """
        name: s
        tasks:
          - name: t
            type: multiple_choice
            data: {format: jsonl, path: x.jsonl}
            prompt: {template: x}
            scorers: [acc]
            generation: {max_new_tokens: 4}
        """)
    assert main(["validate", str(suite)]) == 2
    err = "".join(capsys.readouterr())
    assert "tasks[0].generation: unknown key" in err


def test_builtin_kinds_declare_what_they_need():
    from harness.backends.base import GENERATE, LOGLIKELIHOOD

    kinds = {name: registry.resolve("task_kind", name) for name in ("multiple_choice", "perplexity", "latency", "generation")}
    assert LOGLIKELIHOOD in kinds["multiple_choice"].needs and LOGLIKELIHOOD in kinds["perplexity"].needs
    assert GENERATE in kinds["latency"].needs
    assert kinds["generation"].contamination and kinds["perplexity"].after_run


def test_a_backend_without_loglikelihood_is_refused_before_the_task_runs(tmp_path, capsys):
    """An endpoint on the chat API cannot score options: a clear error naming the capability."""
    from tests.conftest import MC_SUITE, REPO
    from tests.fake_openai_server import FakeOpenAIServer

    suite = write(tmp_path / "mc.yaml", MC_SUITE.replace("@DATA@", str(REPO / "data" / "mmlu_sample")))
    with FakeOpenAIServer() as srv:
        models = write(tmp_path / "m.yaml", f"base: {{name: api, source: endpoint, options: {{base_url: '{srv.url}', "
                                            "model: m, api: chat}}\n")
        assert main(["run", str(suite), "--models", str(models), "--store", str(tmp_path / "h.duckdb"), "--limit", "2"]) == 2
    err = capsys.readouterr().err
    assert "needs loglikelihood" in err and "api: completions" in err
