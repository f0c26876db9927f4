"""Replay pre-generated answers (`harness run --answers NAME=FILE`) as a backend: outputs are
looked up by item id and turn, never generated; log-likelihoods are not available."""

from __future__ import annotations

from harness.backends.base import REPLAY, BackendInfo, Generation
from harness.errors import BackendError
from harness.hashing import stable_hash


class ReplayBackend:
    def __init__(self, name: str, answers: dict[str, tuple[str, ...]]):
        self.name = name
        self.answers = answers
        self.key = stable_hash({"answers": answers})
        self.info = BackendInfo(name="replay", device="none", dtype="none", capabilities=frozenset({REPLAY}))

    def replay(self, wanted: list[tuple[str, int]]) -> list[Generation]:
        """The stored answer of each (item id, turn); a missing one is a BackendError naming it."""
        missing = [f"{i} (turn {k})" for i, k in wanted if i not in self.answers or len(self.answers[i]) < k]
        if missing:
            raise BackendError(f"answer set '{self.name}' has no answer for {len(missing)} item(s): {', '.join(missing[:5])}"
                               + (" ..." if len(missing) > 5 else ""),
                               hint="answer ids must equal the suite's sample ids (set the task's id_field)")
        return [Generation(self.answers[i][k - 1], 0, len(self.answers[i][k - 1].split()), 0.0) for i, k in wanted]

    def generate(self, prompts, config):
        raise BackendError(f"answer set '{self.name}' replays stored answers; it can't generate")

    def loglikelihood(self, requests, on_done=None):
        raise BackendError(f"answer set '{self.name}' has no log-likelihoods")

    def close(self) -> None:
        pass
