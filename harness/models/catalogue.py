"""The model catalogue: one object per command, built once from a models file (and the store, for
built variants). It resolves names to loadable models, chooses their backends, opens them, and
gives lineage and training sources, caching what it derives (the prepared base, the variant
plans, resolved models). Commands pass the catalogue, never the pieces it is made of."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from harness.backends.base import Backend, BackendFactory
from harness.config.models import ModelsFile, lineage, load_models, model_names
from harness.errors import ConfigError, UnknownNameError
from harness.models import serving
from harness.models.chat_plan import ChatPlan, plan_chat
from harness.models.parent import ParentModel
from harness.models.resources import Resources, resources_of
from harness.models.variants import (
    PlannedVariant,
    check_base,
    plan_variants,
    prepare_base,
    record_base,
    resolve_built,
)
from harness.recipes import recipe_for
from harness.store.db import Store


class Catalogue:
    """The models of one models file, as one command sees them."""

    def __init__(self, spec: ModelsFile, path: Path, store: Store | None = None):
        self.spec = spec
        self.path = Path(path)
        """The models file (relative paths in it resolve against its folder)."""
        self.store = store
        """Where built variants are looked up; None until a command attaches one (`attach`)."""
        self._resolved: dict[str, ParentModel] = {}
        self._chat: dict[str, ChatPlan] = {}

    @classmethod
    def load(cls, path: Path | str, store: Store | None = None) -> Catalogue:
        """Parse and check a models file (recipes, parents, every backend and its options)."""
        spec = load_models(path)
        serving.check_backends(spec, Path(path))
        return cls(spec, Path(path), store)

    def check(self) -> None:
        """Everything that can be checked without loading, converting or building a model: the
        base's backend, options and files (a GGUF by its magic bytes, a model folder by its config
        and weights), and each variant's recipe config, dependencies and data files."""
        check_base(self.spec.base, self.path, self.spec)
        plan_variants(self.spec, self.path, base_key="-")

    def attach(self, store: Store) -> Catalogue:
        """Use `store` for built variants (a command opens the store after checking its files)."""
        self.store = store
        return self

    # -- names -------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """Every model of the file: the base first, then variants in file order."""
        return model_names(self.spec)

    @cached_property
    def evaluators(self) -> list[str]:
        """The models that score outputs (reward models) rather than generate them."""
        return [v.name for v in self.spec.variants if recipe_for(v.method).evaluator]

    @property
    def candidates(self) -> list[str]:
        """The models that can be evaluated: every name but the evaluators."""
        return [n for n in self.names if n not in self.evaluators]

    def check_name(self, name: str, where: str) -> None:
        """UnknownNameError (with did-you-mean) unless `name` is a model of the file."""
        if name not in self.names:
            raise UnknownNameError("model", name, self.names, where=where)

    def lineage(self, name: str) -> list[str]:
        """Names from the base down to `name`, inclusive."""
        return lineage(self.spec, name)

    # -- backends ----------------------------------------------------------------------------
    def backend_name(self, name: str) -> str:
        """The backend that serves `name` (its variant's, its recipe's, the base's, the default)."""
        return serving.backend_name(self.spec, name)

    def backend(self, name: str) -> BackendFactory:
        """The registered backend factory that serves `name` (its options, checks and description)."""
        return serving.factory(self.backend_name(name))

    def options(self, name: str) -> dict:
        """The backend options of `name`: its variant's over the base's (same backend only)."""
        return serving.model_options(self.spec, name)

    def resources(self, name: str) -> Resources:
        """Replicas and per-replica CPUs/GPUs of `name` (its own `resources:`, else its parent's)."""
        return resources_of(self.spec, name, self.backend_name(name), self.options(name))

    # -- resolving and opening ---------------------------------------------------------------
    @cached_property
    def base(self) -> ParentModel:
        """The base, prepared once per command (a GGUF's sha256 is verified, converted once)."""
        return prepare_base(self.spec.base, self.path, self.spec)

    @cached_property
    def plans(self) -> dict[str, PlannedVariant]:
        """Every variant's validated config and content key, in file order."""
        return plan_variants(self.spec, self.path, self.base.key)

    def resolve(self, name: str, where: str | None = None) -> ParentModel:
        """A loadable description of `name` (built variants looked up in the store by their
        current key). StoreError when a variant is not built; UnknownNameError for a name the
        file does not declare."""
        if name not in self._resolved:
            self.check_name(name, where or str(self.path))
            if self.store is None:
                raise ConfigError(f"{self.path}: '{name}' can't be resolved before a store is attached")
            self._resolved[name] = resolve_built(self.spec, self.path, name, self.store, self.base, self.plans)
        return self._resolved[name]

    def chat(self, name: str) -> ChatPlan:
        """Whether and how `name` is evaluated with its chat template (read from its tokenizer or
        GGUF once per command; ConfigError for `chat_template: true` without a template)."""
        if name not in self._chat:
            self._chat[name] = plan_chat(self.spec, name, self.resolve(name), self.backend_name(name), self.options(name),
                                         str(self.path))
        return self._chat[name]

    def check_servable(self, name: str) -> None:
        """The backend of `name` can load it (checked before a run writes anything)."""
        serving.check_servable(self.spec, self.resolve(name))

    def open(self, name: str) -> Backend:
        """Load `name` with the backend that serves it."""
        return serving.open_model(self.spec, self.resolve(name))

    def record_base(self) -> None:
        """The base's lineage row in the attached store, unless it is there already."""
        if self.store is None:
            raise ConfigError(f"{self.path}: no store attached")
        record_base(self.store, self.spec.base, self.base)

    # -- lineage data ------------------------------------------------------------------------
    def training_sources(self, name: str) -> list[tuple[str, Path]]:
        """(label, file) of every training set in `name`'s lineage, and in the lineages of the
        models its recipes read (a distillation teacher's data reaches the student through it)."""
        out: list[tuple[str, Path]] = []
        todo, seen = [name], set()
        while todo:
            current = todo.pop()
            for step in self.lineage(current):
                if step in seen or step not in self.plans:
                    continue
                seen.add(step)
                plan = self.plans[step]
                files = plan.recipe.training_files or plan.recipe.data_files
                out += [(f"{step}: {path.name}", path) for path in files(plan.config, self.path)]
                todo += list(plan.dependencies)
        return sorted(set(out))
