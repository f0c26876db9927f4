"""Judge prompts in MT-Bench's file format: one JSON object per line with `name`, `type`
(single | pairwise), `system_prompt`, `prompt_template` and `output_format`. harness ships its
own authored set (prompts.jsonl beside this module); FastChat's judge_prompts.jsonl loads as is."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from harness.data.loaders import read_jsonl_objects
from harness.errors import ConfigError

BUILTIN_PROMPTS = Path(__file__).with_name("prompts.jsonl")
_FIELD = re.compile(r"\{([a-z][a-z0-9_]*)\}")


@dataclass(frozen=True)
class JudgePrompt:
    """One judge prompt. Templates use `{name}` fields (MT-Bench's): question, answer,
    answer_a, answer_b, ref_answer_1, question_1, question_2, answer_1, answer_a_1, ..."""

    name: str
    type: str
    system_prompt: str
    prompt_template: str
    output_format: str

    @property
    def fields(self) -> set[str]:
        return set(_FIELD.findall(self.prompt_template))

    def fill(self, values: dict[str, str]) -> str:
        """Substitute `{field}`s in one pass (values are never re-scanned, so braces inside an
        answer, e.g. code, are kept as they are). A field without a value is a ConfigError."""
        missing = sorted(self.fields - set(values))
        if missing:
            raise ConfigError(f"judge prompt '{self.name}' needs {', '.join(missing)}, which this item does not provide")
        return _FIELD.sub(lambda m: values[m.group(1)], self.prompt_template)


def load_judge_prompts(path: Path | str | None = None) -> dict[str, JudgePrompt]:
    """Read a judge-prompt file (default: the shipped prompts); ConfigError names the line."""
    path = Path(path) if path else BUILTIN_PROMPTS
    if not path.is_file():
        raise ConfigError(f"{path}: judge prompt file not found")

    out: dict[str, JudgePrompt] = {}
    for n, row in read_jsonl_objects(path):
        missing = [k for k in ("name", "type", "system_prompt", "prompt_template", "output_format") if k not in row]
        if missing:
            raise ConfigError(f"{path}: line {n}: missing {', '.join(missing)} (MT-Bench judge-prompt format)")
        if row["type"] not in ("single", "pairwise"):
            raise ConfigError(f"{path}: line {n}: type must be 'single' or 'pairwise' (got {row['type']!r})")
        out[row["name"]] = JudgePrompt(row["name"], row["type"], row["system_prompt"], row["prompt_template"], row["output_format"])
    return out


def dimension_instructions(dimensions: tuple[str, ...]) -> str:
    """Appended to a single-grading prompt when dimensions are scored separately."""
    lines = "\n".join(f"{d}: [[rating]]" for d in dimensions)
    return ("\n\nInstead of one overall rating, rate each of these dimensions separately from 1 to 10, "
            f"one per line, in exactly this form:\n{lines}")
