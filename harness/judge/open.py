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


def check_judge_env(j: JudgeSpec, where: str) -> None:
    """An endpoint judge's API key variable is set (checked by `validate` and before a run writes)."""
    import os

    if j.backend == "openai" and j.api_key_env and j.api_key_env not in os.environ:
        raise ConfigError(f"{where}: judge.api_key_env: environment variable {j.api_key_env} is not set",
                          hint=f"export {j.api_key_env}=... (the key is read at run time and never stored)")


def check_judge_task(task, where: str, spec, models_path: Path | None, store, evaluated: list[str], base=None, plans=None) -> None:
    """Everything a judge task needs, checked before a run writes anything: the endpoint's key,
    the local judge model (declared and built), and a pairwise baseline whose outputs will be
    there (evaluated now, or stored by an earlier run)."""
    from harness.config.models import model_names

    j = task.spec.judge
    check_judge_env(j, where)
    if j.backend != "openai":
        if spec is None:
            raise ConfigError(f"{where}: a local judge is a model of the models file: pass --models", hint="or use backend: openai")
        name = j.variant or spec.base.name
        if name not in model_names(spec):
            raise UnknownNameError("judge variant", name, model_names(spec), where=f"{where}: judge.variant")
        from harness.variants import resolve_built

        resolve_built(spec, models_path, name, store, base, plans)
    baseline = task.spec.baseline
    if baseline and baseline not in evaluated:
        stored = store.query("SELECT count(*) AS n FROM latest_runs WHERE variant = ? AND task = ?", [baseline, task.spec.of])
        if not stored[0]["n"]:
            raise ConfigError(f"{where}: baseline '{baseline}' has no stored outputs of task '{task.spec.of}' and is not "
                              f"evaluated by this command (evaluating: {', '.join(evaluated) or 'nothing'})",
                              hint=f"add --variant {baseline} (or --answers {baseline}=FILE), or run it first")
