"""A reference of every key of the suite, models and report files, generated from the pydantic
models that parse them (their field docstrings): also every recipe's `config:` (each recipe of
harness.registry.BUILTINS["recipe"] names its config model) and the config of every scorer that
takes one, plus the environment variables harness reads.

`harness schema` prints it; `harness schema --out docs/reference.md` writes it; `--check` fails
when the file differs from what the code would write, which CI runs (tests/test_schema.py), so
the reference cannot drift from behaviour.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from harness import registry
from harness.config.loader import Strict

ENVIRONMENT = [
    ("HARNESS_CACHE", "~/.cache/harness", "Converted checkpoints (the embedded GGUF dequantized once), llama.cpp's converter "
     "downloads, folded vLLM checkpoints, pickled large tokenizers."),
    ("HARNESS_STORE", "`.harness/harness.duckdb`", "The DuckDB store every command reads and writes (`--store` overrides it)."),
    ("HARNESS_STORE_WAIT_S", "60", "How long a writer waits (seconds) for the store's lock held by another process."),
    ("HARNESS_STORE_MEMORY", "80% of RAM (DuckDB's default)", "DuckDB's memory limit for the store (e.g. `512MB`, `2GiB`): "
     "DuckDB caches what it read up to it, so a report over a large store grows toward it; a limit bounds memory at some "
     "cost in time."),
    ("HARNESS_PROGRESS", "1", "0 turns progress bars off (CI logs)."),
    ("HARNESS_CHECKPOINT_ITEMS", "16", "A running task commits finished items every this many..."),
    ("HARNESS_CHECKPOINT_MIN_SECONDS", "1", "...at most this often..."),
    ("HARNESS_CHECKPOINT_SECONDS", "1", "...and at least this often (seconds). Each finished item is also "
     "journaled (`<store>.journal`) the moment it finishes, so a kill loses only the items in flight."),
    ("HARNESS_LLAMA_CPP_CONVERTER", "<venv>/share/harness/llama.cpp", "Where llama.cpp's `convert_hf_to_gguf.py` is (the `gguf` recipe)."),
    ("HF_HUB_OFFLINE, HF_DATASETS_OFFLINE", "1 (forced)", "Every harness command sets both to 1 unless they are set: nothing is "
     "downloaded at run time unless you allow it explicitly (e.g. `source: hub` with HF_HUB_OFFLINE=0)."),
]

FILES = [
    ("Suite files (`suites/*.yaml`)", "harness.config.suite:SuiteSpec"),
    ("Models files (`models/*.yaml`)", "harness.config.models:ModelsFile"),
    ("Report files (`reports/*.yaml`)", "harness.config.report:ReportSpec"),
]

# Said of a key whose field has no docstring of its own. These names mean the same in every
# recipe (they are passed to transformers/trl as they are), so one sentence serves them all; a
# field's own docstring always wins. "Model.key" entries are for names that mean something
# specific in one model.
GLOSSARY = {
    "learning_rate": "Peak learning rate of the optimizer.",
    "max_steps": "Optimizer steps to train (training stops there).",
    "batch_size": "Examples per batch.",
    "gradient_accumulation_steps": "Batches whose gradients are summed before each optimizer step "
                                   "(effective batch = batch_size x this).",
    "max_length": "Tokens per example after truncation.",
    "warmup_ratio": "Share of the steps over which the learning rate warms up from 0.",
    "lr_scheduler": "Learning-rate schedule after the warm-up (transformers' lr_scheduler_type).",
    "logging_steps": "Log the training loss (kept in the variant's training curve) every this many steps.",
    "seed": "Seed of training (initialisation and data order).",
    "split_seed": "Seed of the train/validation split, so the split is the same on every build.",
    "validation_fraction": "Share of the rows held out for validation (seeded by split_seed).",
    "prep_fields": "Row fields that `prep` cleans (and filters on).",
    "dropout": "LoRA dropout on the adapter's input.",
    "description": "Free text, for people reading the file.",
    "type": "The kind: this value selects this model (see its description above).",
    "QLoRASpec.quant_type": "The 4-bit data type: nf4 (NormalFloat) or fp4.",
    "QLoRASpec.compute_dtype": "dtype of the matmuls over the 4-bit weights on CUDA (the CPU computes in float32).",
    "TextPrepSpec.remove_emoji": "Delete emoji from the text.",
    "TextPrepSpec.normalise_whitespace": "Collapse runs of whitespace to one space and trim the ends.",
    "PreferenceDataSpec.source": "pairs: given JSONL pairs; rule: chosen = the reference, rejected = the parent's own "
                                 "generation; judge: an LLM judge labels response_a / response_b; unpaired (kto only): "
                                 "single completions labelled desirable or undesirable.",
    "DistillConfig.level": "response: the student is SFT-trained on the teacher's generations; token: (1-λ) CE + λ T² "
                           "KL(teacher ‖ student) on the teacher's token distributions.",
    "RlooTrainingSpec.max_completion_length": "Longest completion sampled from the policy, in tokens.",
    "RlooTrainingSpec.temperature": "Sampling temperature of the policy's completions.",
    "RewardScorerSpec.batch_size": "Outputs scored per forward pass of the reward model.",
    "SimilaritySpec.limit": "Use only the first N texts of the corpus.",
    "RubricSpec.name": "The rubric's name.",
    "RubricCheck.allowed": "urls / mentions: false forbids them, true allows them.",
    "RubricCheck.name": "The check's name: its metric is `rubric_<name>`.",
}


def _load(target: str) -> type[BaseModel]:
    import importlib

    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation refers to (through lists, unions, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out = []
    for arg in typing.get_args(annotation):
        out += _models_in(arg)
    return out


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _type_name(typing.get_args(annotation)[0])
    if origin is typing.Literal:
        return " \\| ".join(repr(a).replace("'", "") for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(annotation) if a is not type(None)) + \
            (" (optional)" if type(None) in typing.get_args(annotation) else "")
    if origin in (list, tuple):
        args = typing.get_args(annotation)
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        args = typing.get_args(annotation)
        return f"mapping {_type_name(args[0])} -> {_type_name(args[1])}" if args else "mapping"
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
        return {"str": "text", "int": "integer", "float": "number", "bool": "true/false", "dict": "mapping",
                "Any": "any"}.get(annotation.__name__, annotation.__name__)
    return str(annotation).replace("typing.", "")


def _default(field) -> str:
    if field.is_required():
        return "**required**"
    value = field.default if field.default is not PydanticUndefined else field.default_factory()
    if isinstance(value, BaseModel):
        return "(defaults below)"
    if value is None:
        return "–"
    return f"`{value!r}`".replace("|", "\\|") if not isinstance(value, str) else f"`{value!r}`".replace("\n", "\\n").replace("|", "\\|")


def _cell(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def _describe(model: type[BaseModel], key: str, field) -> str:
    """What a key is: its own docstring; for a block with no words of its own, its model's
    docstring; else the model's docstring when that names the key; else the glossary."""
    if field.description:
        return field.description
    nested = _models_in(field.annotation)
    if len(nested) == 1 and nested[0].__doc__:
        return " ".join(nested[0].__doc__.split())
    if f"`{key}`" in (model.__doc__ or ""):
        return f"See {model.__name__} above."
    return GLOSSARY.get(f"{model.__name__}.{key}") or GLOSSARY.get(key) or "(not documented in the code)"


def _model_tables(roots: list[type[BaseModel]], seen: list[type[BaseModel]]) -> list[str]:
    """A table per model reachable from `roots` (breadth first), skipping those already in `seen`
    (documented earlier: a link to them still works, since anchors are document-wide)."""
    lines: list[str] = []
    queue = list(roots)
    while queue:
        model = queue.pop(0)
        if model in seen:
            continue
        seen.append(model)
        doc = " ".join((model.__doc__ or "").split())
        lines += [f"### {model.__name__}", "", doc or f"(`{model.__module__}.{model.__name__}`)", "",
                  "| key | type | default | what it is |", "|---|---|---|---|"]
        for name, field in model.model_fields.items():
            key = field.alias or name
            lines.append(f"| `{key}` | {_type_name(field.annotation)} | {_default(field)} | {_cell(_describe(model, key, field))} |")
            queue += [m for m in _models_in(field.annotation) if m not in seen]
        lines.append("")
    return lines


def scorer_config_model(obj: Any) -> type[BaseModel] | None:
    """The pydantic model a configurable scorer parses its `{name: config}` with.

    A scorer may declare it (`config_model`); otherwise it is found in the scorer's `configure`
    function: the Strict models that function (or a helper of its own module it calls) names.
    Scorers that take no config (no `configure`) have none."""

    declared = getattr(obj, "config_model", None)
    if declared is not None:
        return declared
    configure = getattr(obj, "configure", None)
    if configure is None:
        return None
    found: list[type[BaseModel]] = []
    todo, done = [configure], set()
    while todo:
        fn = todo.pop(0)
        if fn in done or not hasattr(fn, "__code__"):
            continue
        done.add(fn)
        for name in fn.__code__.co_names:
            value = fn.__globals__.get(name)
            if isinstance(value, type) and issubclass(value, Strict) and value not in found:
                found.append(value)
            elif isinstance(value, types.FunctionType) and value.__module__ == configure.__module__:
                todo.append(value)  # a helper of the scorer's module, e.g. rubric's load_rubric
    return found[0] if found else None


def render() -> str:
    """The reference, as Markdown."""

    lines = ["# Reference: every key of the suite, models and report files", "",
             "Generated by `harness schema --out docs/reference.md` from the pydantic models that parse the files "
             "(unknown keys are an error), every recipe's `config:` and every scorer's config included; CI fails "
             "when it is out of date. Paths in files are relative to the file.", ""]
    seen: list[type[BaseModel]] = []
    for title, target in FILES:
        lines += [f"## {title}", ""]
        lines += _model_tables([_load(target)], seen)

    # Built-ins only (not plugins installed here), so the reference is the same on every machine.
    recipes = {name: registry.resolve("recipe", name).config_model for name in registry.BUILTINS["recipe"]}
    lines += ["## Recipe configs (`config:` of a variant)", "",
              "A variant's `method:` names a recipe (`harness list recipes`); its `config:` is validated against that "
              "recipe's config model when the models file is read (unknown keys are an error).", "",
              "| method | config |", "|---|---|"]
    lines += [f"| `{name}` | [{model.__name__}](#{model.__name__.lower()}) |" for name, model in recipes.items()]
    lines.append("")
    lines += _model_tables(list(dict.fromkeys(recipes.values())), seen)

    scorers = {name: scorer_config_model(registry.resolve("scorer", name)) for name in registry.BUILTINS["scorer"]}
    lines += ["## Scorer configs (`scorers:` of a task)", "",
              "A scorer is written by name (`- rouge`) or, when it takes a config, as `- name: {config}` "
              "(`harness list scorers`).", "",
              "| scorer | config |", "|---|---|"]
    lines += [f"| `{name}` | {f'[{model.__name__}](#{model.__name__.lower()})' if model else 'none: written by name'} |"
              for name, model in scorers.items()]
    lines.append("")
    lines += _model_tables([m for m in dict.fromkeys(scorers.values()) if m is not None], seen)

    lines += ["## Environment variables", "", "| variable | default | what it does |", "|---|---|---|"]
    lines += [f"| `{name}` | {default} | {_cell(text)} |" for name, default, text in ENVIRONMENT]
    return "\n".join(lines) + "\n"
