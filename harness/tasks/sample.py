"""The rendered items of a task and the task as prepared for a run: the types every task kind,
scorer and backend shares (below all of them: at run time it imports only the kernel)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from harness.errors import ConfigError
from harness.hashing import stable_hash

if TYPE_CHECKING:
    from harness.config.suite import TaskSpec
    from harness.scorers import Scorer


@dataclass(frozen=True)
class ChatParts:
    """A rendered prompt's parts, so a chat template can lay them out as messages the way lm-eval
    does: the description as a system message, each few-shot example as a user question and an
    assistant answer, the item as the last user message. Joined as text they are the plain prompt:
    system + separator.join(question + delimiter + answer for each example, then the item)."""

    system: str
    shots: tuple[tuple[str, str], ...]
    """(question, answer) of each few-shot example, as rendered."""
    delimiter: str
    """Between an example's question and its answer (multiple choice's target delimiter)."""
    separator: str
    """Between examples (the prompt's example separator)."""
    question: str

    @property
    def text(self) -> str:
        """The plain prompt."""
        return self.system + self.separator.join([q + self.delimiter + a for q, a in self.shots] + [self.question])

    def messages(self, fewshot_as_multiturn: bool) -> list[dict]:
        """lm-eval's messages: the examples as their own user/assistant turns, or (default) folded
        with the item into one user message after the system message."""
        system = [{"role": "system", "content": self.system}] if self.system else []
        if fewshot_as_multiturn:
            turns = [m for q, a in self.shots for m in ({"role": "user", "content": q}, {"role": "assistant", "content": a})]
            return system + turns + [{"role": "user", "content": self.question}]
        return system + [{"role": "user", "content": self.text[len(self.system):]}]


@dataclass(frozen=True)
class Sample:
    """One rendered item."""

    id: str
    prompt: str
    """The full prompt (generation) or the context scored against each continuation (MC)."""
    continuations: tuple[str, ...] = ()
    """Multiple choice: the strings scored after the context, e.g. (' A', ' B', ' C', ' D')."""
    options: tuple[str, ...] = ()
    """Multiple choice: the option texts, for display."""
    gold: int | None = None
    """Multiple choice: index of the correct continuation."""
    reference: str | None = None
    """Generation: the reference text."""
    turns: tuple[str, ...] = ()
    """Multi-turn generation: the rendered user messages, in order (prompt is then unused)."""
    references: tuple[str | None, ...] = ()
    """Multi-turn generation: a reference answer per turn, where the item has one."""
    fields: dict = field(default_factory=dict, compare=False, hash=False)
    """The item's fields (scorers that need more than the reference, e.g. source documents)."""
    item_id: str | None = None
    """Set when this sample is a part of an item (a turn): the item's id. None: `id` is the item's."""
    turn: int | None = None
    """Multi-turn generation: which turn of the item this sample is (1, 2, ...)."""
    cluster: str | None = None
    """Items with the same cluster are correlated (task cluster_field, HaluEval's source passage):
    statistics resample clusters. None: the item (its turns together) is its own cluster."""
    chat: ChatParts | None = field(default=None, compare=False, hash=False, repr=False)
    """The prompt's parts, for a model evaluated with its chat template (harness.tasks.chat)."""

    @property
    def content_hash(self) -> str:
        """The item as rendered before any model sees it (prompt or user turns, options, gold,
        references): equal hashes, identical items, whatever their ids."""
        return stable_hash([self.turns or self.prompt, self.continuations, self.options, self.gold, self.reference,
                            self.references])


@dataclass(frozen=True)
class PreparedTask:
    spec: TaskSpec
    suite: str
    samples: tuple[Sample, ...]
    data_hash: str
    prompt_hash: str
    scorers: tuple[tuple[str, Scorer], ...] = ()
    """(name, scorer) per scorer entry, configured scorers already configured."""
    n_total: int = 0
    """Items the task has; fewer are evaluated when a --limit sample was drawn."""
    suite_tasks: str = "[]"
    """The suite's tasks as JSON ([{task, type, baseline}]), recorded with every run."""
    native: object = field(default=None, compare=False, hash=False, repr=False)
    """lm_eval tasks: lm-eval's Task object, built when the task is prepared."""
    chat: object = field(default=None, compare=False, hash=False, repr=False)
    """The chat template (harness.models.chat_template.ChatTemplate) the task's prompts were laid
    out with for the model at hand (harness.tasks.chat.apply); None: plain prompts."""
    fewshot_as_multiturn: bool = False
    """With `chat`: few-shot examples as their own user and assistant turns."""

    @property
    def partial(self) -> bool:
        """A --limit sample: the run is recorded as partial."""
        return len(self.samples) < self.n_total

    @property
    def scorers_hash(self) -> str:
        """Content of scorer configs (e.g. a rubric file): part of the run key."""
        return stable_hash([(name, s.config_hash) for name, s in self.scorers])


def sample_items(samples: list, limit: int, seed: int, task_name: str) -> list:
    """A seeded random sample of `limit` items, in their original order (not the first N, which
    would over-represent whatever the file lists first)."""
    if limit < 1:
        raise ConfigError(f"--limit must be at least 1 (got {limit})")
    if limit >= len(samples):
        return list(samples)
    # the first `limit` of one seeded order: a larger limit keeps every item of a smaller one, so
    # a sequential run (--until-decided) grows its sample instead of drawing a new one
    order = list(range(len(samples)))
    random.Random(f"{seed}:{task_name}").shuffle(order)
    keep = set(order[:limit])
    return [s for i, s in enumerate(samples) if i in keep]
