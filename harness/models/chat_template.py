"""A model's chat template, read without loading its weights, and rendered as transformers renders
it (`tokenizer.apply_chat_template` is a call of the same jinja renderer with the tokenizer's
special tokens), so a prompt formatted here is byte for byte what lm-eval and serving stacks build.

Where a template comes from: a transformers folder's tokenizer (tokenizer_config.json or
chat_template.jinja, through AutoTokenizer; an adapter folder that ships its own tokenizer wins),
or a GGUF file's `tokenizer.chat_template` metadata."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from harness.hashing import stable_hash

log = logging.getLogger(__name__)

INSTRUCT_NAME = re.compile(r"(?i)(^|[-_.])(instruct|chat|it)($|[-_.])")
"""Names of instruction-tuned checkpoints (`...-Instruct`, `...-chat`, `gemma-3-270m-it`), as
a word of the name, so `chatter` or `split` don't count."""


@dataclass(frozen=True)
class ChatTemplate:
    """A chat template and the special tokens it is rendered with."""

    source: str
    """The jinja template text."""
    special_tokens: tuple[tuple[str, str], ...]
    """(name, text) of the tokenizer's special tokens (bos_token, eos_token, ...), passed to the
    template as transformers passes them."""
    origin: str
    """Where it was read from, for the run's record."""

    @property
    def hash(self) -> str:
        """The template's identity (part of the run key)."""
        return stable_hash([self.source, self.special_tokens])

    @property
    def bos_token(self) -> str | None:
        return dict(self.special_tokens).get("bos_token")

    def render(self, messages: list[dict], add_generation_prompt: bool = True) -> str:
        """The conversation as the model reads it (lm-eval's HFLM.apply_chat_template: on a
        template error with a system message, the system message is dropped and it tries again)."""
        import jinja2
        from transformers.utils.chat_template_utils import render_jinja_template

        def once(msgs: list[dict]) -> str:
            rendered, _ = render_jinja_template(conversations=[msgs], chat_template=self.source,
                                                add_generation_prompt=add_generation_prompt,
                                                continue_final_message=not add_generation_prompt,
                                                **dict(self.special_tokens))
            return rendered[0]

        try:
            return once(messages)
        except jinja2.exceptions.TemplateError:
            if not any(m["role"] == "system" for m in messages):
                raise
            log.warning("the chat template (%s) rejects a system message: it is left out, as lm-eval does", self.origin)
            return once([m for m in messages if m["role"] != "system"])


TEMPLATE_TOKENS = ("bos_token", "eos_token")
"""The special tokens templates print (and a GGUF names): one model's template has one hash
whether it is read from its tokenizer or from its GGUF."""


def _special_tokens(tokenizer) -> tuple[tuple[str, str], ...]:
    tokens = {k: v for k, v in tokenizer.special_tokens_map.items() if k in TEMPLATE_TOKENS and isinstance(v, str)}
    return tuple(sorted(tokens.items()))


def from_folder(folder: Path) -> ChatTemplate | None:
    """The chat template of a transformers folder's tokenizer, or None when it has none (or the
    folder has no tokenizer)."""
    folder = Path(folder)
    if not any((folder / f).exists() for f in ("tokenizer_config.json", "tokenizer.json")):
        return None
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    source = tok.chat_template
    if isinstance(source, dict):  # several named templates: the default one
        source = source.get("default")
    if not source:
        return None
    return ChatTemplate(source, _special_tokens(tok), f"the tokenizer in {folder}")


def from_gguf(path: Path) -> ChatTemplate | None:
    """The chat template in a GGUF file's metadata, with its BOS and EOS tokens' text."""
    from gguf import GGUFReader

    reader = GGUFReader(str(path))

    def value(key: str):
        f = reader.fields.get(key)
        if f is None:
            return None
        return f.contents() if hasattr(f, "contents") else bytes(f.parts[f.data[0]]).decode("utf-8")

    source = value("tokenizer.chat_template")
    if not source:
        return None
    tokens = value("tokenizer.ggml.tokens") or []
    special = {}
    for name, key in (("bos_token", "tokenizer.ggml.bos_token_id"), ("eos_token", "tokenizer.ggml.eos_token_id")):
        idx = value(key)
        if isinstance(idx, int) and 0 <= idx < len(tokens):
            special[name] = tokens[idx]
    return ChatTemplate(str(source), tuple(sorted(special.items())), f"the metadata of {path}")


def looks_instruct(*names: str | None) -> bool:
    """Whether any of these names (model name, hub id, folder) is an instruction-tuned checkpoint's."""
    # A path or hub id counts by its last part (a folder called `chat/` above a model doesn't)
    return any(n and INSTRUCT_NAME.search(n.rstrip("/").rsplit("/", 1)[-1]) for n in names)
