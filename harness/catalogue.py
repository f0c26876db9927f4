"""The model catalogue: every name of a models file resolved to a loadable model and opened
with its backend through the registry. `run`, the judge, fidelity and the recipes that need a
model in memory all go through it; no other module picks a backend by name.

A model's backend is the `backend:` of its variant entry, else of the base, else the default:
`fake` for a fake base, `hf` (transformers) otherwise."""

from __future__ import annotations

from pathlib import Path

from harness.config.models import ModelsFile, VariantSpec
from harness.errors import ConfigError

DEFAULT_BACKEND = {"fake": "fake"}
"""Base source -> default backend; any other source is served by `hf`."""


def backend_name(spec: ModelsFile, name: str) -> str:
    """The backend that serves model `name` of the models file."""
    variant: VariantSpec | None = next((v for v in spec.variants if v.name == name), None)
    if variant is not None and variant.backend:
        return variant.backend
    return spec.base.backend or DEFAULT_BACKEND.get(spec.base.source, "hf")


def factory(name: str, where: str = "backend"):
    """The registered BackendFactory called `name` (did-you-mean on a typo)."""
    from harness import registry
    from harness.backends.base import BackendFactory

    f = registry.resolve("backend", name, where=where)
    if not isinstance(f, BackendFactory):
        raise ConfigError(f"{where}: backend '{name}' ({registry.target('backend', name)}) is not a harness BackendFactory",
                          hint="register a harness.backends.base.BackendFactory(open, options) under harness.plugins")
    return f


def check_backends(spec: ModelsFile, models_path: Path) -> None:
    """Every backend the file names is registered, and the base's options are ones its backend takes."""
    base_backend = backend_name(spec, spec.base.name)
    f = factory(base_backend, f"{models_path}: base.backend")
    where = f"{models_path}: base.options"
    unknown = sorted(set(spec.base.options) - f.options)
    if unknown:
        raise ConfigError(f"{where}: unknown {base_backend}-backend option(s) {unknown}; allowed: {sorted(f.options)}")
    for key in f.integer_options & set(spec.base.options):
        value = spec.base.options[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{where}.{key}: expected a whole number of at least 1, got {value!r}")
    for i, v in enumerate(spec.variants):
        if v.backend:
            factory(v.backend, f"{models_path}: variants[{i}].backend")


def open_model(spec: ModelsFile, model) -> object:
    """Load a resolved model (harness.recipes.ParentModel) with the backend its name is served by."""
    name = backend_name(spec, model.name)
    return factory(name).open(model, dict(spec.base.options))
