"""Open the judge a suite names: a model of the models file, or an OpenAI-compatible endpoint,
wrapped in the store's call cache."""

from __future__ import annotations

from pathlib import Path

from harness.config.suite import JudgeSpec
from harness.errors import ConfigError, UnknownNameError
from harness.judge.clients import CachedJudge, LocalJudge, OpenAIJudge


class OpenedJudge(CachedJudge):
    """A cached judge that also owns (and closes) the model it loaded."""

    def __init__(self, inner, store, backend=None):
        super().__init__(inner, store)
        self._backend = backend

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()


def open_judge(j: JudgeSpec, spec, models_path: Path | None, store, seed: int, base=None, plans=None) -> OpenedJudge:
    """`base` and `plans`, when the caller has them, spare a second preparation of the base."""
    if j.backend == "openai":
        inner = OpenAIJudge.from_spec(j, seed)
        return OpenedJudge(inner, store)
    if spec is None:
        raise ConfigError("a local judge is a model of the models file: pass --models", hint="or use backend: openai")
    from harness.config.models import model_names
    from harness.variants import open_backend, resolve_built

    name = j.variant or spec.base.name
    if name not in model_names(spec):
        raise UnknownNameError("judge variant", name, model_names(spec), where="judge.variant")
    model = resolve_built(spec, models_path, name, store, base, plans)
    backend = open_backend(spec, model)
    inner = LocalJudge(backend, model.key, j.mode, j.temperature, j.max_tokens, seed)
    return OpenedJudge(inner, store, backend)
