"""`harness run SUITE --model SPEC`: a one-off evaluation without a models file, as lm-eval's
`--model hf --model_args pretrained=...` allows, and the run-time overrides of `harness run`
(`--seed`, `--num-fewshot`, `--gen-kwargs`, `--batch-size`).

A SPEC is `KIND:WHAT[,key=value...]`:

- `hf:ORG/NAME` a Hugging Face Hub id (from the local cache; downloaded when HF_HUB_OFFLINE=0),
  `hf:PATH` a local transformers directory;
- `gguf:PATH` a GGUF file; `endpoint:URL` an OpenAI-compatible server (`model=` names the
  served model); `embedded` the default Gemma 3 270M; `fake` the deterministic fake backend;
- keys: `name=` (the model's name in the store; default from the id or path), `peft=PATH` (a
  PEFT adapter applied on top: evaluated as a variant of the model), `dtype=`, `backend=`,
  `chat_template=true|false|auto`; any other key is a backend option (`batch_size=auto`).

The spec becomes a models file written beside the store (`<store dir>/models/<name>.yaml`), so
the run's lineage, keys and provenance are those of any run, and the same model can be named
with `--models` later."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.config.models import load_models
from harness.errors import ConfigError
from harness.textfile import write_atomic

KINDS = ("hf", "gguf", "endpoint", "embedded", "fake")


@dataclass(frozen=True)
class OneOff:
    """A parsed --model: the models file it stands for, and the model to evaluate."""

    models: dict[str, Any]
    evaluate: str
    """The base's name, or the adapter variant's when peft= is given."""
    needs_build: bool
    """An adapter variant is built (checked and copied into the store's artifacts) before the run."""


def _value(raw: str) -> Any:
    """A key's value as YAML reads it (numbers, true/false), text otherwise."""
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw
    return value if isinstance(value, (int, float, bool, str)) else raw


def _name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(text.rstrip("/")).name.removesuffix(".gguf")).strip("-.")
    return name or "model"


def _source(kind: str, what: str, keys: dict[str, Any], where: str) -> dict[str, Any]:
    """The base's source keys for a kind (pops the keys it consumes)."""
    if kind == "hf":
        if not what:
            raise ConfigError(f"{where}: hf: needs a Hub id or a local directory, e.g. hf:google/gemma-3-270m")
        local = Path(what).expanduser()
        return {"source": "hf_dir", "path": str(local.resolve())} if local.is_dir() else {"source": "hub", "id": what}
    if kind == "gguf":
        path = Path(what).expanduser()
        if not path.is_file():
            raise ConfigError(f"{where}: {what}: no such GGUF file")
        return {"source": "gguf", "path": str(path.resolve())}
    if kind == "endpoint":
        if not re.match(r"^https?://", what):
            raise ConfigError(f"{where}: expected the server's URL, e.g. endpoint:http://127.0.0.1:8000/v1,model=my-model")
        if "model" not in keys:
            raise ConfigError(f"{where}: name the served model with ,model=NAME")
        return {"source": "endpoint", "options": {"base_url": what, "model": str(keys.pop("model"))}}
    return {"source": kind}


def parse_model(spec: str) -> OneOff:
    """The models file and model name a --model SPEC stands for; ConfigError naming what is wrong."""
    where = f"--model {spec}"
    # KIND[:WHAT][,key=value...]: WHAT may hold colons (a URL), never a comma
    kind, _, what = spec.split(",")[0].partition(":")
    pairs = spec.split(",")[1:]
    if kind not in KINDS:
        raise ConfigError(f"{where}: unknown kind '{kind}' (expected one of {', '.join(KINDS)}, e.g. hf:google/gemma-3-270m)")
    keys: dict[str, Any] = {}
    for pair in pairs:
        key, eq, raw = pair.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"{where}: '{pair}': expected key=value after the first comma")
        keys[key.strip()] = _value(raw.strip())
    base = _source(kind, what, keys, where)
    name = str(keys.pop("name", None) or _name(what or kind))
    peft = keys.pop("peft", None)
    for key in ("dtype", "backend", "chat_template"):
        if key in keys:
            base[key] = keys.pop(key)
    if keys:
        base["options"] = {**base.get("options", {}), **keys}
    models: dict[str, Any] = {"base": {"name": name, **base}}
    if peft is None:
        return OneOff(models, name, needs_build=False)
    adapter = Path(str(peft)).expanduser()
    if not (adapter / "adapter_config.json").is_file():
        raise ConfigError(f"{where}: peft={peft}: no adapter_config.json there (expected a PEFT adapter directory)")
    variant = f"{name}-{_name(str(adapter))}"
    models["variants"] = [{"name": variant, "parent": name, "method": "adapter", "config": {"path": str(adapter.resolve())}}]
    return OneOff(models, variant, needs_build=True)


def write_models(oneoff: OneOff, store_path: Path) -> Path:
    """The one-off's models file beside the store (validated as every models file is)."""
    folder = store_path.parent / "models"
    path = folder / f"{oneoff.models['base']['name']}.yaml"
    text = ("# Written by `harness run --model`: the model as a models file (pass --models with it to name it again).\n"
            + yaml.safe_dump(oneoff.models, sort_keys=False))
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        write_atomic(path, text, "one-off models file", hint="pass another --store")
    load_models(path)
    return path


# -- overrides ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Overrides:
    """Run-time changes to every suite given to `harness run`; they become part of each task as
    validated, so they are stored with the run (its task config, keys and generation settings)."""

    seed: int | None = None
    num_fewshot: int | None = None
    gen_kwargs: dict[str, Any] = field(default_factory=dict)
    batch_size: int | None = None
    load: dict[str, Any] = field(default_factory=dict)
    """Keys of load tasks' `load:` block (rates, requests_per_rate, slo: {...}) (`harness load`)."""
    only_types: tuple[str, ...] = ()
    """Keep only the tasks of these types (`harness load`: the load tasks); empty: every task."""

    def __bool__(self) -> bool:
        return (self.seed is not None or self.num_fewshot is not None or bool(self.gen_kwargs) or self.batch_size is not None
                or bool(self.load) or bool(self.only_types))

    def words(self) -> str:
        parts = [f"seed {self.seed}" if self.seed is not None else "", f"{self.num_fewshot}-shot" if self.num_fewshot is not None else "",
                 ", ".join(f"{k}={v!r}" for k, v in self.gen_kwargs.items()),
                 f"batch size {self.batch_size}" if self.batch_size is not None else "",
                 f"load {self.load}" if self.load else "", f"only {', '.join(self.only_types)} tasks" if self.only_types else ""]
        return "; ".join(p for p in parts if p)

    def apply(self, suite, where: str):
        """`suite` (a SuiteSpec) with the overrides, validated again: a generation key the suite
        format does not have, or a few-shot count for a task without examples, is a ConfigError."""
        from pydantic import ValidationError

        data = suite.model_dump()
        if self.seed is not None:
            data["seed"] = self.seed
        if self.only_types:
            data["tasks"] = [t for t in data["tasks"] if t["type"] in self.only_types]
            if not data["tasks"]:
                raise ConfigError(f"{where}: no task of type {' or '.join(self.only_types)}",
                                  hint="a load task: type: load with a load: {rates: [...], slo: {latency_ms: ...}} block")
        for task in data["tasks"]:
            if self.load and isinstance(task.get("load"), dict):
                task["load"] = {**task["load"], **{k: v for k, v in self.load.items() if k != "slo"},
                                "slo": {**task["load"]["slo"], **self.load.get("slo", {})}}
            if self.num_fewshot is not None and isinstance(task.get("fewshot"), dict):
                shots = task["fewshot"]
                if self.num_fewshot and not (shots.get("split") or shots.get("path")):
                    raise ConfigError(f"{where}: task '{task['name']}': --num-fewshot {self.num_fewshot}, but the task has no "
                                      "`fewshot:` block saying where its examples come from",
                                      hint="add e.g. fewshot: {k: 5, split: dev} (or path:) to the task, or leave --num-fewshot out")
                shots["k"] = self.num_fewshot
            elif self.num_fewshot is not None and "num_fewshot" in task:
                task["num_fewshot"] = self.num_fewshot
            if task.get("generation") is not None:
                task["generation"].update(self.gen_kwargs)
                if self.batch_size is not None:
                    task["generation"]["batch_size"] = self.batch_size
        try:
            return type(suite).model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            at = ".".join(str(p) for p in first["loc"])
            generation = "generation" in at
            raise ConfigError(f"{where}: with this command's overrides ({self.words()}): {at}: {first['msg']}",
                              hint="generation keys: max_new_tokens, temperature, top_p, top_k, repetition_penalty, stop, n"
                              if generation else "change or leave out the override") from None


def parse_gen_kwargs(text: str) -> dict[str, Any]:
    """`temperature=0.7,top_p=0.9,max_new_tokens=64` as a dict (values read as YAML scalars;
    `stop` as a list split on '|')."""
    out: dict[str, Any] = {}
    for pair in (p for p in text.split(",") if p.strip()):
        key, eq, raw = pair.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"--gen-kwargs {text}: '{pair}': expected key=value pairs separated by commas")
        key = key.strip()
        out[key] = raw.split("|") if key == "stop" else _value(raw.strip())
    return out
