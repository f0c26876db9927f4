"""Whether a model is evaluated with its chat template, and with which one: the models file's
`chat_template` setting (auto, true, false; a variant inherits its parent's), the template the
model ships (its tokenizer's, an adapter's own tokenizer's, or its GGUF's) and, for `auto`,
whether the model is an instruct model or was fine-tuned on chat-formatted data. The decision and
its reason are recorded with every run; the template's hash is part of the run key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.config.models import ModelsFile, lineage
from harness.errors import ConfigError
from harness.models.chat_template import ChatTemplate, from_folder, from_gguf, looks_instruct
from harness.models.parent import ParentModel


@dataclass(frozen=True)
class ChatPlan:
    """How one model's prompts are laid out."""

    setting: str
    """The models file's setting, after inheritance: auto, true or false."""
    reason: str
    """Why the template is or isn't applied (shown in the log, recorded with the run)."""
    template: ChatTemplate | None = None
    """The template the harness renders prompts with; None when off or rendered by a server."""
    server_side: bool = False
    """An endpoint on its chat route: the server applies its own template."""
    fewshot_as_multiturn: bool = False

    @property
    def on(self) -> bool:
        return self.template is not None or self.server_side

    def identity(self) -> dict | None:
        """What the run key holds of it: None when off (plain prompts)."""
        if not self.on:
            return None
        return {"template": self.template.hash if self.template else "server", "multiturn": self.fewshot_as_multiturn}

    def record(self) -> dict:
        """What a run records of it."""
        return {"applied": self.on, "setting": self.setting, "reason": self.reason,
                "template_hash": self.template.hash if self.template else None,
                "origin": self.template.origin if self.template else ("the server's chat route" if self.server_side else None),
                "fewshot_as_multiturn": self.fewshot_as_multiturn}


OFF = ChatPlan("false", "not evaluated with a chat template")


def _inherited(spec: ModelsFile, name: str, field: str):
    """The nearest explicit setting from `name` up to the base."""
    by_name = {v.name: v for v in spec.variants}
    for step in reversed(lineage(spec, name)):
        value = getattr(by_name[step], field) if step in by_name else getattr(spec.base, field)
        if value is not None:
            return value
    return None


def _trained_with_template(spec: ModelsFile, name: str) -> str | None:
    """The variant in `name`'s lineage whose recipe trained on chat-formatted data, if any."""
    by_name = {v.name: v for v in spec.variants}
    for step in lineage(spec, name):
        v = by_name.get(step)
        data = v.config.get("data") if v is not None else None
        if isinstance(data, dict) and data.get("chat_template") is True:
            return step
    return None


def _template(model: ParentModel, backend: str) -> ChatTemplate | None:
    """The template that ships with the model as `backend` loads it."""
    if backend == "llama_cpp":
        return from_gguf(model.gguf) if model.gguf is not None else None
    # An adapter that ships its own tokenizer (an SFT that added a template) wins over the base's.
    for folder in reversed((model.base_dir, *model.adapters)):
        if folder is not None and Path(folder).is_dir():
            found = from_folder(Path(folder))
            if found is not None:
                return found
    return None


def plan_chat(spec: ModelsFile, name: str, model: ParentModel, backend: str, options: dict,
              where: str) -> ChatPlan:
    """`name`'s chat plan as `backend` serves it. ConfigError for `chat_template: true` on a
    model that has no template (or an endpoint on its completions route)."""
    setting = _inherited(spec, name, "chat_template")
    setting = "auto" if setting is None else setting
    label = setting if isinstance(setting, str) else str(setting).lower()
    multiturn = bool(_inherited(spec, name, "fewshot_as_multiturn"))
    if setting is False:
        return ChatPlan("false", "chat_template: false")
    if backend == "openai":
        api = options.get("api", "completions")
        if api == "chat":
            return ChatPlan(label, "an endpoint on its chat route: the server applies its template", server_side=True,
                            fewshot_as_multiturn=multiturn)
        if setting is True:
            raise ConfigError(f"{where}: '{name}' has chat_template: true but its endpoint uses the completions route",
                              hint="set options.api: chat (the server applies the model's template)")
        return ChatPlan(label, "an endpoint on its completions route: plain prompts")
    if backend == "fake":
        if setting is True:
            raise ConfigError(f"{where}: '{name}' has chat_template: true but the fake backend has no chat template")
        return ChatPlan(label, "the fake backend has no chat template")
    trained = _trained_with_template(spec, name)
    base = spec.base
    instruct = looks_instruct(base.name, base.id, base.path)  # the weights' origin, not a variant's own name
    if setting == "auto" and not trained and not instruct:
        return ChatPlan("auto", "auto: not an instruct model, and not fine-tuned on chat-formatted data")
    template = _template(model, backend)
    if template is None:
        if setting is True:
            raise ConfigError(f"{where}: '{name}' has chat_template: true but its tokenizer has no chat template",
                              hint="give the model a tokenizer with a template, or set chat_template: false")
        return ChatPlan(label, "auto: the model ships no chat template")
    why = ("chat_template: true" if setting is True
           else f"auto: {trained} was fine-tuned on chat-formatted data" if trained else "auto: an instruct model")
    return ChatPlan(label, f"{why}; template from {template.origin}", template=template, fewshot_as_multiturn=multiturn)
