"""The one lookup mechanism: `kind -> name -> "module:attr"`, imported lazily.

Built-in components are listed here as data, so `harness --help` imports nothing
heavy and there is no registration by import side effect. Third-party plugins come
in through the entry-point group `harness.plugins`, named `<kind>.<name>`, e.g.
`scorer.toxicity = "my_pkg.scorers:toxicity"`.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from typing import Any

from harness.errors import UnknownNameError

ENTRY_POINT_GROUP = "harness.plugins"

BUILTINS: dict[str, dict[str, str]] = {
    "backend": {
        # harness.backends.base.BackendFactory instances: open(model, options) -> Backend
        "hf": "harness.backends.hf:FACTORY",
        "fake": "harness.backends.fake:FACTORY",
        "llama_cpp": "harness.backends.llama_cpp:FACTORY",
        "openai": "harness.backends.openai_compat:FACTORY",
        "vllm": "harness.backends.vllm:FACTORY",
    },
    "scorer": {
        "acc": "harness.scorers.multiple_choice:acc",
        "acc_norm": "harness.scorers.multiple_choice:acc_norm",
        "exact_match": "harness.scorers.text_match:exact_match",
        "rouge": "harness.scorers.text_overlap:rouge",
        "bleu": "harness.scorers.text_overlap:bleu",
        "chrf": "harness.scorers.text_overlap:chrf",
        "rubric": "harness.scorers.rubric:rubric",
        "hallucination": "harness.scorers.hallucination:hallucination",
        "brand_similarity": "harness.scorers.similarity:brand_similarity",
        "answer_match": "harness.scorers.answer_match:answer_match_scorer",
        "reward": "harness.scorers.reward:reward",
        "toxicity": "harness.scorers.safety:toxicity",
        "refusal": "harness.scorers.safety:refusal",
    },
    "recipe": {
        "sft_lora": "harness.recipes.sft_lora:RECIPE",
        "dpo": "harness.recipes.preference:DPO",
        "ipo": "harness.recipes.preference:IPO",
        "simpo": "harness.recipes.preference:SIMPO",
        "kto": "harness.recipes.preference:KTO",
        "quantize": "harness.recipes.quantize:RECIPE",
        "merge": "harness.recipes.merge:RECIPE",
        "distill": "harness.recipes.distill:RECIPE",
        "shrink": "harness.recipes.shrink:RECIPE",
        "adapter": "harness.recipes.adapter:RECIPE",
        "gguf": "harness.recipes.gguf_export:RECIPE",
        "gguf_lora": "harness.recipes.gguf_lora:RECIPE",
        "reward_model": "harness.recipes.reward_model:RECIPE",
        "rloo": "harness.recipes.rloo:RECIPE",
        "grpo": "harness.recipes.grpo:RECIPE",
    },
    "task_kind": {
        # What each kind of task stores besides its scorers' metrics (harness.stats.metricspec.TaskKind).
        "multiple_choice": "harness.tasks.kinds.multiple_choice:KIND",
        "generation": "harness.tasks.kinds.generation:KIND",
        "perplexity": "harness.tasks.kinds.perplexity:KIND",
        "latency": "harness.tasks.kinds.latency:KIND",
        "load": "harness.tasks.kinds.load:KIND",
        "classification": "harness.tasks.kinds.classification:KIND",
        "lm_eval": "harness.tasks.kinds.lm_eval:KIND",
        "judge_pairwise": "harness.judge.kinds:PAIRWISE",
        "judge_single": "harness.judge.kinds:SINGLE",
    },
    "loader": {
        "jsonl": "harness.data.loaders:load_jsonl",
        "csv": "harness.data.loaders:load_csv",
        "mmlu_csv": "harness.data.loaders:load_mmlu_csv",
        "halueval": "harness.data.loaders:load_halueval",
        "tweeteval": "harness.data.loaders:load_tweeteval",
        "hf": "harness.data.loaders:load_hf_dataset",
    },
}


@lru_cache(maxsize=1)
def _plugins() -> dict[str, dict[str, str]]:
    from importlib.metadata import entry_points

    found: dict[str, dict[str, str]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        kind, _, name = ep.name.partition(".")
        if name:
            found.setdefault(kind, {})[name] = ep.value
    return found


def names(kind: str) -> list[str]:
    """All names registered for `kind`, built-in and plugin."""
    return sorted({**BUILTINS.get(kind, {}), **_plugins().get(kind, {})})


def target(kind: str, name: str, where: str | None = None) -> str:
    """The `module:attr` string for a name, or UnknownNameError with a did-you-mean."""
    table = {**BUILTINS.get(kind, {}), **_plugins().get(kind, {})}
    if name not in table:
        raise UnknownNameError(kind, name, table, where=where)
    return table[name]


def resolve(kind: str, name: str, where: str | None = None) -> Any:
    """Import and return the object registered as `name` of `kind`."""
    return import_target(target(kind, name, where))


def import_target(spec: str) -> Any:
    """Import `pkg.module:attr` (also used for user-supplied function references)."""
    module_name, _, attr = spec.partition(":")
    module = importlib.import_module(module_name)
    obj: Any = module
    for part in attr.split(".") if attr else []:
        obj = getattr(obj, part)
    return obj
