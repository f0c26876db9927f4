"""Which backend serves each model of a models file, with which options, and opening a resolved
model with it through the registry. The catalogue (harness.models.catalogue) is the one user;
no other module picks a backend by name.

A model's backend is the `backend:` of its variant entry, else its recipe's own (a `gguf` export
is served by `llama_cpp`), else the base's `backend:`, else the default for the base's source:
`fake` for a fake base, `openai` for an endpoint, `hf` (transformers) otherwise. A model's
options are its variant's `options:` over the base's, when both are served by the same backend."""

from __future__ import annotations

from pathlib import Path

from harness import registry
from harness.backends.base import Backend, BackendFactory
from harness.config.models import ModelsFile, VariantSpec
from harness.errors import ConfigError
from harness.recipes import Recipe

DEFAULT_BACKEND = {"fake": "fake", "endpoint": "openai"}
"""Base source -> default backend; any other source is served by `hf`."""


def _variant(spec: ModelsFile, name: str) -> VariantSpec | None:
    return next((v for v in spec.variants if v.name == name), None)


def backend_name(spec: ModelsFile, name: str) -> str:
    """The backend that serves model `name` of the models file."""
    variant = _variant(spec, name)
    if variant is not None:
        if variant.backend:
            return variant.backend
        own = _recipe_backend(variant.method)
        if own:
            return own
    return spec.base.backend or DEFAULT_BACKEND.get(spec.base.source, "hf")


def _recipe_backend(method: str) -> str | None:
    try:
        recipe = registry.resolve("recipe", method)
    except ConfigError:
        return None  # an unknown method is reported where recipes are checked, with its location
    return recipe.default_backend if isinstance(recipe, Recipe) else None


def model_options(spec: ModelsFile, name: str) -> dict:
    """The backend options of model `name`: its variant's over the base's when the base is served
    by the same backend (a llama_cpp export does not get the hf base's batch_size)."""
    variant = _variant(spec, name)
    inherited = dict(spec.base.options) if backend_name(spec, name) == backend_name(spec, spec.base.name) else {}
    return {**inherited, **(variant.options if variant is not None else {})}


def factory(name: str, where: str = "backend"):
    """The registered BackendFactory called `name` (did-you-mean on a typo)."""

    f = registry.resolve("backend", name, where=where)
    if not isinstance(f, BackendFactory):
        raise ConfigError(f"{where}: backend '{name}' ({registry.target('backend', name)}) is not a harness BackendFactory",
                          hint="register a harness.backends.base.BackendFactory(open, options) under harness.plugins")
    return f


def check_backends(spec: ModelsFile, models_path: Path) -> None:
    """Every backend the file names is registered, and every model's options are ones its backend takes."""
    entries = [("base", spec.base.name, spec.base.options)] + [(f"variants[{i}]", v.name, v.options) for i, v in enumerate(spec.variants)]
    for where, name, own in entries:
        backend = backend_name(spec, name)
        f = factory(backend, f"{models_path}: {where}.backend")
        if where != "base" and not own and backend == backend_name(spec, spec.base.name):
            continue  # inherits the base's options, checked already
        options = model_options(spec, name)
        at = f"{models_path}: {where}.options" if own or where == "base" else f"{models_path}: base.options (inherited by {name})"
        unknown = sorted(set(options) - f.options)
        if unknown:
            raise ConfigError(f"{at}: unknown {backend}-backend option(s) {unknown}; allowed: {sorted(f.options)}")
        for key in f.integer_options & set(options):
            value = options[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{at}.{key}: expected a whole number of at least 1, got {value!r}")
        if f.check is not None:
            f.check(options, at)


def check_servable(spec: ModelsFile, model) -> None:
    """The backend of a resolved model can load it (llama.cpp needs a GGUF file), checked before a
    run writes anything. A reward model is never served: it scores outputs (the `reward` scorer)."""
    if model.reward_head is not None:
        raise ConfigError(f"{model.name}: a reward model scores outputs; it cannot generate or answer as a model",
                          hint=f"use it in a generation task's scorers: `- reward: {{model: {model.name}}}`")
    f = factory(backend_name(spec, model.name))
    if f.can_serve is not None:
        f.can_serve(model)


def open_model(spec: ModelsFile, model) -> Backend:
    """Load a resolved model (harness.models.parent.ParentModel) with the backend its name is served by."""
    check_servable(spec, model)
    return factory(backend_name(spec, model.name)).open(model, model_options(spec, model.name))
