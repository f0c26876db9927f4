"""A task's prompts laid out with a model's chat template, as lm-eval lays them out with
`--apply_chat_template` (and `--fewshot_as_multiturn`):

- the prompt's description becomes the system message; the few-shot examples and the item are
  one user message (or, multiturn, each example a user turn and an assistant answer, then the
  item as the last user turn); the template adds the generation prompt;
- multiple choice and classification score each option right after the generation prompt, so
  the target delimiter (the space before ` A`) is dropped, as lm-eval drops it under a template;
- multi-turn items render each turn's conversation with the template (harness.tasks.prepare
  .conversation_prompt); perplexity texts stay as they are (scored from the start token); lm-eval
  tasks get the template through lm-eval itself.

The templated copy is what the model is served and what the samples table stores as each
sample's prompt; the items' identity (content hashes, data and prompt hashes) stays the plain
task's, so a run with and a run without a template are runs over the same items."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from harness.tasks.sample import PreparedTask, Sample

if TYPE_CHECKING:
    from harness.models.chat_template import ChatTemplate


def apply(task: PreparedTask, template: ChatTemplate, fewshot_as_multiturn: bool = False) -> PreparedTask:
    """`task` with every prompt that has parts rendered through `template`."""
    samples = tuple(templated(s, template, fewshot_as_multiturn) for s in task.samples)
    return replace(task, samples=samples, chat=template, fewshot_as_multiturn=fewshot_as_multiturn)


def templated(sample: Sample, template: ChatTemplate, fewshot_as_multiturn: bool = False) -> Sample:
    """One sample's prompt through the template; a sample without parts (a perplexity text, an
    lm-eval document, a multi-turn item whose turns are rendered as they are generated) as it is."""
    parts = sample.chat
    if parts is None or sample.turns:
        return sample
    prompt = template.render(parts.messages(fewshot_as_multiturn), add_generation_prompt=True)
    d = parts.delimiter
    continuations = tuple(c[len(d):] if d and c.startswith(d) else c for c in sample.continuations)
    return replace(sample, prompt=prompt, continuations=continuations)
