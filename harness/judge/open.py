"""Open the judge a suite names: a model of the models file, or an OpenAI-compatible endpoint,
wrapped in the store's call cache."""

from __future__ import annotations

import os

from harness.config.suite import JudgeSpec
from harness.errors import ConfigError, UnknownNameError
from harness.judge.clients import CachedJudge, LocalJudge, OpenAIJudge
from harness.models.catalogue import Catalogue


class OpenedJudge(CachedJudge):
    """A cached judge that also owns (and closes) the model it loaded."""

    def __init__(self, inner, store, backend=None):
        super().__init__(inner, store)
        self._backend = backend

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()


def open_judge(j: JudgeSpec, catalogue: Catalogue | None, store, seed: int, opener=None) -> OpenedJudge:
    """The judge `j` names: an endpoint, or a model of the catalogue (loaded here, closed with it;
    `opener(name)` instead of the catalogue's `open` serves it another way, e.g. spread over Ray
    replicas)."""
    if j.backend == "openai":
        inner = OpenAIJudge.from_spec(j, seed)
        return OpenedJudge(inner, store)
    name = _local_judge_name(j, catalogue, "judge")
    backend = (opener or catalogue.open)(name)
    inner = LocalJudge(backend, catalogue.resolve(name).key, j.mode, j.temperature, j.max_tokens, seed)
    return OpenedJudge(inner, store, backend)


def local_judge_model(j: JudgeSpec, catalogue: Catalogue | None, where: str) -> str | None:
    """The model of the models file a judge runs on (None for an endpoint judge): its resources
    are checked with the variants' before anything loads."""
    return None if j.backend == "openai" else _local_judge_name(j, catalogue, where)


def _local_judge_name(j: JudgeSpec, catalogue: Catalogue | None, where: str) -> str:
    """The model a local judge names (default: the base), declared in the catalogue."""
    if catalogue is None:
        raise ConfigError(f"{where}: a local judge is a model of the models file: pass --models", hint="or use backend: openai")
    name = j.variant or catalogue.spec.base.name
    if name not in catalogue.names:
        raise UnknownNameError("judge variant", name, catalogue.names, where=f"{where}.variant")
    return name


def check_judge_env(j: JudgeSpec, where: str) -> None:
    """An endpoint judge's API key variable is set (checked by `validate` and before a run writes)."""
    if j.backend == "openai" and j.api_key_env and j.api_key_env not in os.environ:
        raise ConfigError(f"{where}: judge.api_key_env: environment variable {j.api_key_env} is not set",
                          hint=f"export {j.api_key_env}=... (the key is read at run time and never stored)")


def check_judge_task(task, where: str, catalogue: Catalogue | None, store, evaluated: list[str]) -> None:
    """Everything a judge task needs, checked before a run writes anything: the endpoint's key,
    the local judge model (declared and built), and a pairwise baseline whose outputs will be
    there (evaluated now, or stored by an earlier run)."""

    j = task.spec.judge
    check_judge_env(j, where)
    if j.backend != "openai":
        name = _local_judge_name(j, catalogue, f"{where}: judge")  # a model of the file (--models given)
        catalogue.resolve(name)  # and built
    baseline = task.spec.baseline
    if baseline and baseline not in evaluated:
        stored = store.query("SELECT count(*) AS n FROM latest_runs WHERE variant = ? AND task = ?", [baseline, task.spec.of])
        if not stored[0]["n"]:
            raise ConfigError(f"{where}: baseline '{baseline}' has no stored outputs of task '{task.spec.of}' and is not "
                              f"evaluated by this command (evaluating: {', '.join(evaluated) or 'nothing'})",
                              hint=f"add --variant {baseline} (or --answers {baseline}=FILE), or run it first")
