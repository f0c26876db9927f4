"""reward: scores each generated output with a built reward model (`method: reward_model` in the
models file): the model's scalar reward for prompt + output.

The suite names the model (`- reward: {model: brand-rm}`); `harness run` resolves the name in
its `--models` file to the built variant (harness.scorers.reward.bind) and the reward model's key
becomes part of the run key, so a retrained reward model rescoring the same outputs is a new run.
The model loads on first use, once per run of `harness run`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from pydantic import Field

from harness.config.loader import Strict, parse_model
from harness.errors import ConfigError
from harness.hashing import stable_hash
from harness.models.reward_model import load_reward_model
from harness.scorers import Scored, needs_config, scorer
from harness.stats.metricspec import Metric

REWARD = Metric("reward", "reward-model score", "higher", unit="logit",
                description="the reward model's scalar score of prompt + output (Bradley-Terry logit: a difference of 1 "
                            "means the model prefers one output to the other with probability 0.73)")


class RewardScorerSpec(Strict):
    """`- reward: {model: NAME}`."""

    model: str
    """A `reward_model` variant of the `--models` file of the run."""
    batch_size: int = Field(default=8, ge=1)


def configure(config: dict, where: str, base_dir: Path):
    spec = parse_model(RewardScorerSpec, config, where)

    def unbound(sample, output):
        raise ConfigError(f"{where}: the reward model '{spec.model}' was not resolved; run the suite with --models naming it")

    return reward.configured(unbound, None, stable_hash(spec.model_dump()), spec=spec, where=where)


def bind(tasks: list, resolve) -> list:
    """The prepared tasks with every `reward` scorer bound to its built model: `resolve(name,
    where)` returns the model (a ParentModel with reward_head). The model's key joins the scorer's
    config hash; the model itself loads on the first output scored."""
    out: list = []
    cache: dict = {}  # cache: one loaded reward model per key, shared by the tasks that use it
    for task in tasks:
        scorers = []
        for name, s in task.scorers:
            if s.name == "reward" and "spec" in s.state:
                spec, where = s.state["spec"], s.state["where"]
                model = resolve(spec.model, f"{where}.model")
                if model.reward_head is None:
                    raise ConfigError(f"{where}.model: '{spec.model}' is not a reward model (method: reward_model)")
                s = replace(s, fn=_scoring(model, spec, cache), config_hash=stable_hash([s.config_hash, model.key]))
            scorers.append((name, s))
        out.append(replace(task, scorers=tuple(scorers)))
    return out


def needs_models(tasks: list) -> list[str]:
    """The reward models the prepared tasks' scorers name."""
    return sorted({s.state["spec"].model for t in tasks for _, s in t.scorers if s.name == "reward" and "spec" in s.state})


def _scoring(model, spec: RewardScorerSpec, cache: dict):
    def reward_scorer(sample, output) -> Scored:
        if model.key not in cache:
            cache[model.key] = load_reward_model(model)
        # Which reward model scored it goes with the sample, so the report can show that model's lineage
        return Scored({"reward": cache[model.key].score([sample.prompt + (output.text or "")], spec.batch_size)[0]},
                      {"model": spec.model, "key": model.key})

    return reward_scorer


reward = scorer(task_types=("generation",), metrics=(REWARD,), configure=configure, name="reward",
                description="a built reward model's score of prompt + output; needs a config: "
                            "`- reward: {model: NAME}` (a reward_model variant of --models)")(needs_config("reward"))
