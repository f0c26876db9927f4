"""The model catalogue: a model's backend comes from the models file (`backend:` on the base or
the variant, default by source) through the registry, so a plugin backend can serve a model."""

from __future__ import annotations

import duckdb
import pytest

from harness.backends.base import BackendFactory, BackendInfo, Generation, GenerationConfig
from harness.cli import main
from harness.config.models import load_models
from harness.models.serving import backend_name
from tests.conftest import write


class EchoBackend:
    """A plugin backend: answers every prompt with its last line, upper-cased."""

    def __init__(self, model, shout: bool = True):
        self.info = BackendInfo(name="echo", device="none", dtype="none")
        self.shout = shout

    def generate(self, prompts, config):
        return [Generation(p.splitlines()[-1].upper() if self.shout else p, 1, 1, 0.0) for p in prompts]

    def loglikelihood(self, requests, on_done=None):
        raise NotImplementedError

    def close(self):
        pass


ECHO = BackendFactory(lambda model, options: EchoBackend(model, **options), frozenset({"shout"}), "echo (a test plugin)")


@pytest.fixture
def echo_plugin(monkeypatch):
    from harness import registry

    monkeypatch.setitem(registry.BUILTINS["backend"], "echo", "tests.test_catalogue:ECHO")


def test_default_and_declared_backends(tmp_path):
    models = write(tmp_path / "m.yaml", """
        base: {name: b, source: hf_dir, path: x}
        variants:
          - {name: v1, parent: b, method: quantize, config: {scheme: int8}}
          - {name: v2, parent: b, method: quantize, config: {scheme: int8}, backend: fake}
        """)
    spec = load_models(models)
    assert [backend_name(spec, n) for n in ("b", "v1", "v2")] == ["hf", "hf", "fake"]
    assert backend_name(load_models(write(tmp_path / "f.yaml", "base: {name: f, source: fake}\n")), "f") == "fake"


def test_a_plugin_backend_serves_a_model(echo_plugin, tmp_path):
    write(tmp_path / "d.jsonl", '{"id": "a", "topic": "hello there"}\n{"id": "b", "topic": "good morning"}\n')
    models = write(tmp_path / "m.yaml", "base: {name: loud, source: fake, backend: echo, options: {shout: true}}\n")
    suite = write(tmp_path / "s.yaml", """
        name: e
        tasks:
          - name: t
            type: generation
            data: {format: jsonl, path: d.jsonl}
            id_field: id
            prompt: {template: "Say:\\n{{ topic }}", reference: "{{ topic | upper }}"}
            scorers: [exact_match]
        """)
    assert main(["run", str(suite), "--models", str(models), "--store", str(tmp_path / "h.duckdb")]) == 0
    con = duckdb.connect(str(tmp_path / "h.duckdb"), read_only=True)
    assert con.execute("SELECT backend, avg(value) FROM runs JOIN scores USING (run_id) WHERE metric = 'exact_match' GROUP BY 1").fetchall() == [("echo", 1.0)]
    con.close()


def test_backend_names_and_options_are_checked(echo_plugin, tmp_path, capsys):
    bad = write(tmp_path / "models" / "m.yaml", "base: {name: b, source: fake, backend: ecko}\n")
    assert main(["validate", str(bad)]) == 2
    assert "base.backend: unknown backend 'ecko'. Did you mean 'echo'?" in capsys.readouterr().out
    bad.write_text("base: {name: b, source: fake, backend: echo, options: {volume: 11}}\n")
    assert main(["validate", str(bad)]) == 2
    assert "base.options: unknown echo-backend option(s) ['volume']; allowed: ['shout']" in capsys.readouterr().out


def test_a_recipe_picks_its_backend_and_options_follow_the_backend(tmp_path, capsys):
    from harness.models.serving import model_options

    models = write(tmp_path / "m.yaml", """
        base: {name: b, source: hf_dir, path: x, options: {batch_size: 4}}
        variants:
          - {name: sft, parent: b, method: quantize, config: {scheme: int8}, options: {max_length: 256}}
          - {name: q4, parent: b, method: gguf, options: {n_ctx: 1024}}
          - {name: q8, parent: b, method: gguf, backend: hf}
        """)
    spec = load_models(models)
    assert [backend_name(spec, n) for n in ("b", "sft", "q4", "q8")] == ["hf", "hf", "llama_cpp", "hf"]
    assert model_options(spec, "sft") == {"batch_size": 4, "max_length": 256}  # inherited, then its own
    assert model_options(spec, "q4") == {"n_ctx": 1024}  # another backend: the base's hf options don't apply
    assert model_options(spec, "q8") == {"batch_size": 4}
    bad = write(tmp_path / "models" / "bad.yaml", """
        base: {name: b, source: fake}
        variants:
          - {name: q4, parent: b, method: gguf, options: {batch_size: 4}}
        """)
    assert main(["validate", str(bad)]) == 2
    assert "variants[0].options: unknown llama_cpp-backend option(s) ['batch_size']" in capsys.readouterr().out


def test_one_catalogue_resolves_opens_and_caches(tmp_path):
    """The object every command passes around: names, backends, resolution against the store
    (cached: the base is prepared once), opening, and clear errors for what it can't do."""
    from harness.errors import ConfigError, StoreError, UnknownNameError
    from harness.models.catalogue import Catalogue
    from harness.store.db import open_store

    models = write(tmp_path / "m.yaml", """
        base: {name: fake-a, source: fake, options: {default_output: hello}}
        variants:
          - {name: sft, parent: fake-a, method: sft_lora, config: {data: {path: d.jsonl, prompt: "{{ q }}", completion: " {{ a }}"}}}
        """)
    write(tmp_path / "d.jsonl", '{"q": "a", "a": "b"}\n')
    catalogue = Catalogue.load(models)
    catalogue.check()
    assert catalogue.names == ["fake-a", "sft"] and catalogue.candidates == ["fake-a", "sft"]
    assert catalogue.backend_name("fake-a") == "fake" and catalogue.lineage("sft") == ["fake-a", "sft"]
    with pytest.raises(ConfigError, match="before a store is attached"):
        catalogue.resolve("fake-a")
    with open_store(tmp_path / "h.duckdb") as store:
        catalogue.attach(store)
        base = catalogue.resolve("fake-a")
        assert catalogue.resolve("fake-a") is base  # cached
        assert catalogue.open("fake-a").generate(["x"], GenerationConfig())[0].text == "hello"
        with pytest.raises(StoreError, match="'sft' is not built"):
            catalogue.resolve("sft")
        with pytest.raises(UnknownNameError, match="unknown model 'sfx'. Did you mean 'sft'"):
            catalogue.resolve("sfx")
