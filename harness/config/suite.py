"""Suite files (`suites/*.yaml`): what to measure."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from harness.config.loader import Strict, load_model_file


class DataSpec(Strict):
    """Where a task's items come from."""

    format: str
    """Loader name: jsonl, csv, mmlu_csv (Hendrycks layout: no header; question, A, B, C, D, answer), hf."""
    path: str | None = None
    """File or directory, relative to the suite file. Not used by `hf`."""
    split: str | None = None
    """mmlu_csv: the sub-directory (`test`, `dev`); hf: the dataset split."""
    subjects: list[str] | None = None
    """mmlu_csv: which subjects (file stems without `_test`); default all found."""
    dataset: str | None = None
    """hf: the dataset name on the hub (users who are online)."""
    name: str | None = None
    """hf: the dataset configuration name."""
    limit: int | None = Field(default=None, ge=1)
    """Evaluate only the first N items (deterministic order)."""


class PromptSpec(Strict):
    """Jinja2 templates (sandboxed, StrictUndefined) over an item's fields."""

    template: str
    """The prompt (generation) or the context whose continuations are scored (multiple choice)."""
    description: str = ""
    """Text placed once before the few-shot examples, e.g. MMLU's 'The following are ...'."""
    reference: str | None = None
    """Generation tasks: the reference text the output is scored against."""
    example_separator: str = "\n\n"
    """Between few-shot examples and before the item (lm-eval's fewshot_delimiter)."""


class FewShotSpec(Strict):
    """Few-shot examples prepended to every item; they come from a separate split, never the items."""

    k: int = Field(default=0, ge=0)
    """Number of examples (0 = zero-shot). Taken first-n in file order, as lm-eval does for MMLU."""
    split: str | None = None
    """mmlu_csv: the split directory holding examples (usually `dev`)."""
    path: str | None = None
    """Other formats: a file of examples, relative to the suite file."""


class MultipleChoiceSpec(Strict):
    """How an item's options become continuations scored by log-likelihood."""

    choices_field: str = "choices"
    """The item field holding the list of option texts."""
    answer_field: str = "answer"
    """The item field holding the gold option: an index (0-based) or a letter (A, B, ...)."""
    continuation: Literal["letter", "text"] = "letter"
    """Score the option letter (MMLU's convention) or the option text itself."""
    target_delimiter: str = " "
    """Placed between context and continuation (lm-eval's target_delimiter)."""


class GenerationSpec(Strict):
    """Decoding settings for generation tasks; recorded with every run and part of its key."""

    max_new_tokens: int = Field(default=64, ge=1)
    temperature: float = Field(default=0.0, ge=0.0)
    """0 means greedy decoding."""
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    stop: list[str] = []
    """Output is cut at the first of these strings."""
    batch_size: int = Field(default=8, ge=1)
    """Prompts per generate call; larger batches are faster on CPU and GPU alike."""


class TaskSpec(Strict):
    """One task: data, prompt, (generation settings) and scorers."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    type: Literal["multiple_choice", "generation"]
    data: DataSpec
    prompt: PromptSpec
    scorers: list[str] = Field(min_length=1)
    """Registered scorer names (see `harness list scorers`)."""
    fewshot: FewShotSpec = FewShotSpec()
    multiple_choice: MultipleChoiceSpec = MultipleChoiceSpec()
    generation: GenerationSpec = GenerationSpec()
    id_field: str | None = None
    """Item field used as the sample id; default: position in the data (or subject/position)."""

    @model_validator(mode="after")
    def _reference_for_generation(self):
        if self.type == "generation" and self.prompt.reference is None:
            raise ValueError("generation tasks need prompt.reference (the text to score against)")
        return self


class SuiteSpec(Strict):
    """A suite file: a named list of tasks."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    seed: int = 1234
    """Seed for sampling-based decoding and any randomised step; recorded with every run."""
    tasks: list[TaskSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_task_names(self):
        names = [t.name for t in self.tasks]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"task names must be unique; repeated: {', '.join(dupes)}")
        return self


def load_suite(path: Path | str) -> SuiteSpec:
    """Parse a suite file (structure only; see harness.tasks for data and scorer checks)."""
    return load_model_file(SuiteSpec, path)
