"""lm-eval's multiple-choice metrics over per-option log-likelihoods."""

from __future__ import annotations

from harness.backends.base import Loglikelihood
from harness.scorers import scorer
from harness.stats.metricspec import Metric
from harness.tasks.sample import Sample


def _argmax(values: list[float]) -> int:
    # First maximum wins on ties, as numpy.argmax does in lm-eval.
    return max(range(len(values)), key=lambda i: (values[i], -i))


ACC = Metric("acc", "accuracy", "higher", "binary", low=0, high=1,
             description="1 when the top-ranked option (a classification task's predicted label) is the gold one")
"""Declared once: the acc scorer's, and classification tasks' per-item correctness."""


@scorer(task_types=("multiple_choice",), metrics=(ACC,))
def acc(sample: Sample, output: list[Loglikelihood]) -> dict[str, float]:
    """1 when the option with the highest summed log-likelihood is the gold one."""
    return {"acc": float(_argmax([o.logprob for o in output]) == sample.gold)}


@scorer(task_types=("multiple_choice",), metrics=(
    Metric("acc_norm", "accuracy (length-normalised)", "higher", "binary", low=0, high=1,
           description="accuracy with each option's log-likelihood divided by its length in characters"),))
def acc_norm(sample: Sample, output: list[Loglikelihood]) -> dict[str, float]:
    """Like acc, with each log-likelihood divided by its option's length in characters
    (lm-eval's `len(choice)`, which is the byte length for ASCII options)."""
    lengths = [max(1, len(c.lstrip())) for c in sample.continuations]
    return {"acc_norm": float(_argmax([o.logprob / n for o, n in zip(output, lengths)]) == sample.gold)}
