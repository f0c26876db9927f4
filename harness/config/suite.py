"""Suite files (`suites/*.yaml`): what to measure."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from harness import registry
from harness.config.loader import Strict, load_model_file
from harness.errors import UnknownNameError
from harness.tasks.extract import ExtractSpec


class DataSpec(Strict):
    """Where a task's items come from."""

    format: str
    """Loader name: jsonl, csv, mmlu_csv (Hendrycks layout: no header; question, A, B, C, D, answer),
    halueval, tweeteval (`<split>_text.txt`, `<split>_labels.txt`, `mapping.txt`), hf."""
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
    """Evaluate a seeded random sample of N items (the suite's `seed`; items keep their file
    order), not the first N. The sample is the task's data: its items are in the run's data hash."""


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
    """The item field holding the list of option texts; a dotted path reaches into nested
    fields (ARC ships `choices: {text: [...], label: [...]}`: `choices.text`)."""
    choices_fields: list[str] | None = Field(default=None, min_length=2)
    """Instead: the options are these fields, one each (a CSV export's `[A, B, C, D]` columns)."""
    answer_field: str = "answer"
    """The item field (or dotted path) holding the gold option: an index (0-based), a letter
    (A, B, ...), or one of the options' labels when `labels_field` is set."""
    labels_field: str | None = None
    """The field (or dotted path) listing each option's own label (ARC's `choices.label`, which
    may be A-D or 1-4); the answer is matched against these labels."""
    continuation: Literal["letter", "text"] = "letter"
    """Score the option letter (MMLU's convention) or the option text itself."""
    target_delimiter: str = " "
    """Placed between context and continuation (lm-eval's target_delimiter)."""


class ClassificationSpec(Strict):
    """A closed set of labels: each item is assigned one, by the log-likelihood of each label after
    the prompt (as multiple choice scores options) or by generating and finding a label in the
    output. Metrics: per-item `acc` (accuracy); per run macro-F1 and each label's precision, recall and
    F1 (with bootstrap intervals), and a confusion matrix in the report."""

    labels: list[str] = Field(min_length=2)
    """The label set, in the order the report lists it."""
    label_field: str = "label"
    """The item field holding the gold label: a label's text or its 0-based index in `labels`."""
    method: Literal["loglikelihood", "generate"] = "loglikelihood"
    """loglikelihood: the label whose continuation scores highest; generate: the task's
    `generation` settings, then `extract` (default: the first label named in the output)."""
    target_delimiter: str = " "
    """loglikelihood: placed between the prompt and each label."""
    extract: dict | None = None
    """generate: a harness.tasks.extract spec (e.g. {type: regex, pattern: 'Emotion: (\\w+)'}) whose
    result is matched to a label ignoring case; an output with no label counts as an
    extraction failure (metric `extraction_failed`) and as wrong."""

    @model_validator(mode="after")
    def _labels(self):
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"labels must be distinct: {self.labels}")
        if self.extract is not None and self.method != "generate":
            raise ValueError("extract applies to method: generate")
        if self.extract is not None:
            ExtractSpec.model_validate(self.extract)
        return self


class GenerationSpec(Strict):
    """Decoding settings for generation tasks; recorded with every run and part of its key."""

    max_new_tokens: int = Field(default=64, ge=1)
    """Longest output, in tokens (stop strings may end it earlier)."""
    temperature: float = Field(default=0.0, ge=0.0)
    """0 means greedy decoding."""
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    """Sampling: draw from the smallest set of tokens whose probability reaches this (nucleus)."""
    top_k: int = Field(default=0, ge=0)
    """Sampling: draw among the k most likely tokens only (0: no limit)."""
    repetition_penalty: float = Field(default=1.0, gt=0.0)
    """Penalise tokens already in the prompt or the output (CTRL's penalty, as transformers,
    vLLM and llama.cpp apply it; 1 = off, the case study uses 1.1). Greedy or sampled."""
    stop: list[str] = []
    """Output is cut at the first of these strings."""
    batch_size: int = Field(default=8, ge=1)
    """Prompts per generate call; larger batches are faster on CPU and GPU alike."""
    n: int = Field(default=1, ge=1)
    """Outputs drawn per prompt (sampling only: temperature > 0). Each draw is scored and kept
    with the sample; the item's score is `aggregate` of the draws' scores, so paired tests and
    gates still see one value per item."""
    aggregate: Literal["mean", "max", "min"] = "mean"
    """How n draws make the item's score: mean (the expected quality of one draw), max
    (best-of-n), min (worst-of-n)."""
    draft_similarity: bool = False
    """With n > 1: also score `draft_similarity`, the mean pairwise cosine similarity of an
    item's drafts in the offline all-MiniLM-L6-v2 space (harness[embed]); near 1.0 when the
    drafts say the same thing in other words, which distinct-n and self-BLEU miss."""

    @model_validator(mode="after")
    def _sampling(self):
        if self.temperature == 0 and self.n > 1:
            raise ValueError(f"n: {self.n} draws at temperature 0 would repeat one greedy output; set temperature > 0")
        if self.draft_similarity and self.n < 2:
            raise ValueError("draft_similarity compares an item's drafts with each other; it needs n >= 2")
        if self.temperature == 0 and (self.top_k or self.top_p < 1):
            raise ValueError("top_k and top_p apply to sampling (temperature > 0); greedy decoding ignores them")
        return self


class MultiTurnSpec(Strict):
    """Multi-turn generation (MT-Bench style): the model answers turn k with its own earlier
    answers in context. Each turn becomes one sample, with id `<item id>#t<k>`."""

    turns_field: str = "turns"
    """The item field holding the list of user turns. `prompt.template` renders each user
    message, with the turn's text available as `turn`."""
    references_field: str | None = "reference"
    """Optional item field holding one reference answer per turn (reference-guided judging)."""
    reference_answers: str | None = None
    """A separate file of reference answers, as FastChat runs MT-Bench: its
    `reference_answer/gpt-4.jsonl` ({question_id, choices: [{turns: [...]}]}, or {id, turns}),
    relative to the suite file, keyed by the task's id_field. It replaces references_field: items
    of `reference_categories` get the file's answers (one missing is an error), every other item
    none, as FastChat gives references to those categories only."""
    reference_categories: list[str] = ["math", "reasoning", "coding", "arena-hard-200"]
    """With reference_answers: the categories (the task's category_field) judged against a
    reference; FastChat's NEED_REF_CATS by default."""

    @model_validator(mode="after")
    def _references_go_somewhere(self):
        if self.reference_answers is not None and self.references_field is None:
            raise ValueError("reference_answers fills references_field: leave references_field set (default 'reference')")
        return self
    conversation: str = (
        "{% for m in messages %}{{ 'User' if m.role == 'user' else 'Assistant' }}: {{ m.content }}\n\n{% endfor %}Assistant:")
    """Jinja2 template turning `messages` ([{role, content}]) into the model's input text."""


class LatencySpec(Strict):
    """Serving measurements (latency tasks): every item is sent at each concurrency level."""

    concurrency: list[Annotated[int, Field(ge=1)]] = Field(default=[1, 4], min_length=1)
    """Requests served together. The hf backend serves N concurrent requests as one batch of N
    (static batching); latency percentiles are reported at the first level, throughput at each."""
    warmup: int = Field(default=1, ge=0)
    """Requests sent first and not recorded (model warm-up, allocator, caches)."""
    price_per_hour: float | None = Field(default=None, ge=0)
    """Instance price (any currency) for cost per 1K output tokens and per 1,000 words."""
    price_per_1k_input_tokens: float | None = Field(default=None, ge=0)
    """API pricing: cost per 1K prompt tokens (with price_per_1k_output_tokens)."""
    price_per_1k_output_tokens: float | None = Field(default=None, ge=0)
    """API pricing: cost per 1K output tokens."""


class SLOSpec(Strict):
    """A latency objective: this percentile of each request's latency stays within the budget."""

    percentile: float = Field(default=95, gt=0, lt=100)
    """Which percentile of the requests (95: p95)."""
    latency_ms: float = Field(gt=0)
    """The budget, in milliseconds."""
    of: Literal["latency", "ttft"] = "latency"
    """latency: end to end, from the request's arrival to its last token; ttft: to its first token."""


class LoadSpec(Strict):
    """Capacity (load tasks): open-loop Poisson arrivals at each rate against a served model."""

    rates: list[Annotated[float, Field(gt=0)]] = Field(min_length=1)
    """Arrival rates in requests per second, tested in increasing order. Each rate times 60 must
    be a whole number (requests per minute names the figures: 0.5/s is `30rpm`)."""
    requests_per_rate: int = Field(default=100, ge=5)
    """Requests sent at each rate (the items, cycled in a seeded order). Enough to bound the SLO's
    percentile: a p95 needs at least 59 (with fewer, nothing bounds it from above at 95%), a p99 299."""
    slo: SLOSpec
    """The objective each rate is tested against."""
    price_per_hour: float | None = Field(default=None, ge=0)
    """The serving instance's price (any currency): the cost per 1K output tokens at the highest
    rate that meets the SLO."""
    max_in_flight: int = Field(default=256, ge=1)
    """Requests open at once at most (client threads). Arrivals beyond it wait in the client, and
    their wait counts in their latency, as a user's would."""
    stop_after_failure: bool = True
    """Stop raising the rate after the first rate that decidedly misses the SLO."""

    @model_validator(mode="after")
    def _rates(self):
        if sorted(self.rates) != self.rates or len(set(self.rates)) != len(self.rates):
            raise ValueError("rates must increase (each tested once, lowest first)")
        odd = [r for r in self.rates if abs(r * 60 - round(r * 60)) > 1e-9]
        if odd:
            raise ValueError(f"rates {odd}: each must be a whole number of requests per minute (e.g. 0.5, 1, 1.5, 2)")
        import math

        # the percentile's one-sided 95% upper bound exists only when q**n <= 0.05
        needed = math.ceil(math.log(0.05) / math.log(self.slo.percentile / 100))
        if self.requests_per_rate < needed:
            raise ValueError(f"requests_per_rate {self.requests_per_rate} can't bound a p{self.slo.percentile:g} from above at 95%: "
                             f"it needs at least {needed} requests per rate")
        return self


class SequenceKLSpec(Strict):
    """Sequence-level KL(variant || parent) on this task's prompts, estimated from samples: the
    drift and reward-hacking signal of a preference-trained variant (the KL penalty of RLHF)."""

    samples: int = Field(default=4, ge=1)
    """Completions sampled from the variant per prompt (plain sampling at temperature 1: the
    estimator needs the variant's own distribution)."""
    max_new_tokens: int = Field(default=32, ge=1)
    """Length of each sample: the KL is that of the first max_new_tokens tokens (or up to EOS)."""
    seed: int = 0
    """Seed of the sampling: the same seed draws the same completions."""


class LmEvalSpec(Strict):
    """An lm-eval task run through the variant's harness backend (see harness.tasks.kinds.lm_eval)."""

    task: str
    """lm-eval's task or group name (hellaswag, arc_easy, gsm8k, mmlu, ... or a local YAML's `task:`
    or `group:`). A group's subtasks are evaluated as one harness task: every document a sample
    (`subtask/index`, its subtask as its category), so the per-item mean is the size-weighted
    group aggregate (lm-eval's figure for groups that weight by size, as mmlu does); lm-eval's own
    group figures are stored beside it as run figures `group_<metric>`."""
    include_path: str | None = None
    """A directory of lm-eval task YAML files, relative to the suite (local tasks over local files)."""
    include_defaults: bool = False
    """With include_path: also index lm-eval's own catalogue (a few seconds; needed when a local
    YAML includes one of lm-eval's). Without include_path the catalogue is always used."""
    num_fewshot: int | None = Field(default=None, ge=0)
    """Few-shot examples; default the task's own setting."""
    limit: int | None = Field(default=None, ge=1)
    """A seeded random sample of N documents (the suite's seed), passed to lm-eval by document id."""


class _TaskCommon(Strict):
    """What every evaluation task has, whatever its kind."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    """The task's name: unique in the suite; runs, reports and gate rules refer to it."""
    type: str
    """The task's kind: multiple_choice, generation, latency, perplexity, classification, lm_eval,
    or a plugin's (`harness list task_kinds`); each kind takes its own block of keys."""
    scorers: list[str | dict[str, dict[str, Any]]] = []
    """Registered scorer names (see `harness list scorers`), or `{name: config}` for a scorer
    that takes a config (e.g. `- rubric: {path: rubric.yaml}`). A generation task may have none
    when a judge task grades it."""
    id_field: str | None = None
    """Item field used as the sample id (it must be unique). Default: a hash of the item's content
    (`h` + 12 hex digits, after the loader's group such as an MMLU subject), never its position, so a
    reordered or edited file can't pair one item with another; identical items get `~2`, `~3`."""
    category_field: str | None = None
    """Item field that groups items (MT-Bench's `category`: writing, roleplay, reasoning, ...):
    stored with every sample, and the report breaks the headline metric down by it, for this task
    and for judge tasks over it."""
    cluster_field: str | None = None
    """Item field whose equal values mark items that are not independent draws (several questions
    over one passage, variants of one prompt): intervals, paired tests and gate rules resample
    whole clusters. Automatic without it: a multi-turn item's turns, and HaluEval's two answers
    over one source."""

    @property
    def choices(self) -> Strict | None:
        """The kind's block of answer choices (options, labels), part of the prompt's hash."""
        return None

    @property
    def scorer_refs(self) -> list[tuple[str, dict[str, Any] | None]]:
        """(name, config or None) per scorer entry."""
        return [(s, None) if isinstance(s, str) else next(iter(s.items())) for s in self.scorers]

    @model_validator(mode="after")
    def _scorer_entries(self):
        for i, s in enumerate(self.scorers):
            if isinstance(s, dict) and len(s) != 1:
                raise ValueError(f"scorers[{i}]: a configured scorer is one mapping {{name: config}}, got keys {sorted(s)}")
        return self

    def _no_scorers(self, draws: int = 1):
        """Kinds whose metrics are built in take no scorers, nor several draws per item."""
        if self.scorers:
            raise ValueError(f"{self.type} tasks take no scorers (their metrics are built in)")
        if draws > 1:
            raise ValueError("generation.n > 1 applies to single-turn generation tasks")


class _ItemTask(_TaskCommon):
    """A task over the suite's own data: items loaded, rendered by a prompt, optionally few-shot."""

    data: DataSpec
    """Where the items come from."""
    prompt: PromptSpec
    """How an item becomes model input."""
    fewshot: FewShotSpec = FewShotSpec()


class MultipleChoiceTask(_ItemTask):
    """Options scored by log-likelihood (lm-eval's definition); metrics from its scorers (acc, acc_norm)."""

    type: Literal["multiple_choice"]
    multiple_choice: MultipleChoiceSpec = MultipleChoiceSpec()

    @property
    def choices(self) -> Strict | None:
        return self.multiple_choice

    @model_validator(mode="after")
    def _checks(self):
        if not self.scorers:
            raise ValueError("multiple-choice tasks need at least one scorer (acc, acc_norm)")
        return self


class GenerationTask(_ItemTask):
    """Outputs generated (or read from a field) and scored by the task's scorers."""

    type: Literal["generation"]
    generation: GenerationSpec = GenerationSpec()
    multi_turn: MultiTurnSpec | None = None
    """Answer a list of turns as a conversation (see MultiTurnSpec)."""
    output_field: str | None = None
    """Score this item field as the output instead of generating one (e.g. the answers of a
    HaluEval file, to measure a scorer against the file's labels); no model call."""
    sequence_kl: SequenceKLSpec | None = None
    """Also estimate each transformers-served variant's sequence-level KL(variant || parent) on
    the prompts (harness.analysis.sequence_kl), stored as `parent_seq_kl`."""

    @model_validator(mode="after")
    def _checks(self):
        if self.multi_turn is not None and self.output_field is not None:
            raise ValueError("output_field scores stored single-turn outputs; it can't be combined with multi_turn")
        if self.sequence_kl is not None and self.multi_turn is not None:
            raise ValueError("sequence_kl applies to single-turn generation tasks (its prompts are the fixed prompt set)")
        if self.generation.n > 1 and (self.multi_turn is not None or self.output_field is not None):
            raise ValueError("generation.n > 1 applies to single-turn generation tasks")
        return self


class LatencyTask(_ItemTask):
    """Serving measurements: every item sent at each concurrency level."""

    type: Literal["latency"]
    generation: GenerationSpec = GenerationSpec()
    latency: LatencySpec = LatencySpec()
    """Concurrency levels, warm-up and prices."""

    @model_validator(mode="after")
    def _checks(self):
        self._no_scorers(draws=self.generation.n)
        return self


class LoadTask(_ItemTask):
    """Capacity at an SLO: the items' prompts sent to a served model (an OpenAI-compatible
    endpoint: llama.cpp's server, vLLM, any API) with open-loop Poisson arrivals at increasing
    rates; the latency curve and the highest rate that meets the SLO."""

    type: Literal["load"]
    generation: GenerationSpec = GenerationSpec()
    load: LoadSpec
    """Rates, requests per rate, the SLO and the price."""

    @model_validator(mode="after")
    def _checks(self):
        self._no_scorers(draws=self.generation.n)
        return self


class PerplexityTask(_ItemTask):
    """The log-likelihood of `prompt.template` (e.g. held-out brand texts) under the variant."""

    type: Literal["perplexity"]

    @model_validator(mode="after")
    def _checks(self):
        self._no_scorers()
        return self


class ClassificationTask(_ItemTask):
    """One of a closed set of labels per item (see ClassificationSpec)."""

    type: Literal["classification"]
    classification: ClassificationSpec
    """The labels and how one is chosen."""

    @property
    def choices(self) -> Strict | None:
        return self.classification
    generation: GenerationSpec = GenerationSpec()
    """Decoding settings when classification.method is generate."""

    @model_validator(mode="after")
    def _checks(self):
        self._no_scorers(draws=self.generation.n)
        return self


class LmEvalTask(_TaskCommon):
    """A task of lm-eval's catalogue (see LmEvalSpec): it brings its own data, prompts and metrics."""

    type: Literal["lm_eval"]
    lm_eval: LmEvalSpec
    """Which lm-eval task, and how."""

    @model_validator(mode="after")
    def _checks(self):
        if self.scorers:
            raise ValueError("an lm_eval task brings its own data, prompts and metrics: no data, prompt or scorers")
        return self


class PluginTask(_TaskCommon):
    """A task of a kind registered by a plugin (entry point `harness.plugins`, `task_kind.NAME`):
    its `options:` block is validated by the kind's own options model."""

    UNION_TAG: ClassVar[str] = "plugin"
    data: DataSpec | None = None
    """Where the items come from (needed unless the kind brings its own items)."""
    prompt: PromptSpec | None = None
    """How an item becomes model input (needed unless the kind brings its own items)."""
    fewshot: FewShotSpec = FewShotSpec()
    options: dict[str, Any] = {}
    """The kind's own settings (see `harness list task_kinds`)."""

    @model_validator(mode="before")
    @classmethod
    def _known_kind(cls, data: Any) -> Any:
        # Before the fields: a misspelt built-in type must say so, not report its block as unknown keys.
        if isinstance(data, dict):
            plugin_kind(str(data.get("type")))
        return data

    @model_validator(mode="after")
    def _checks(self):
        kind = plugin_kind(self.type)
        if kind.prepare is None and (self.data is None or self.prompt is None):
            raise ValueError(f"a {self.type} task needs data and prompt")
        if kind.options is not None:
            kind.options.model_validate(self.options)
        elif self.options:
            raise ValueError(f"task kind '{self.type}' takes no options")
        return self

    def parsed_options(self):
        """The options block as the kind's options model (None for a kind without options)."""
        kind = plugin_kind(self.type)
        return kind.options.model_validate(self.options) if kind.options is not None else None


def plugin_kind(name: str):
    """The registered task kind `name` (a did-you-mean ValueError for an unknown one, which pydantic
    reports with the file and field)."""
    kinds = [k for k in registry.names("task_kind") if not k.startswith("judge_")] + ["judge"]
    if name not in kinds:
        raise ValueError(str(UnknownNameError("task type", name, kinds)))
    return registry.resolve("task_kind", name)


BUILTIN_TASK_MODELS: dict[str, type[_TaskCommon]] = {
    "multiple_choice": MultipleChoiceTask, "generation": GenerationTask, "latency": LatencyTask, "load": LoadTask,
    "perplexity": PerplexityTask, "classification": ClassificationTask, "lm_eval": LmEvalTask,
}
"""The built-in task kinds' models; any other `type` is a plugin kind's (PluginTask)."""

TaskSpec = MultipleChoiceTask | GenerationTask | LatencyTask | LoadTask | PerplexityTask | ClassificationTask | LmEvalTask | PluginTask
"""An evaluation task of any kind (for annotations; files are parsed through SuiteSpec)."""


class HealthThresholds(Strict):
    """When the report marks a judge as unreliable (any one threshold crossed)."""

    min_consistency: float = Field(default=0.6, ge=0, le=1)
    """Order-swap consistency below this: verdicts depend on position more than on content."""
    min_kappa: float = Field(default=0.4, ge=-1, le=1)
    """Cohen's kappa with the human anchor labels below this (when anchors are given)."""
    max_parse_failure: float = Field(default=0.1, ge=0, le=1)
    """Share of judge replies that could not be parsed (or failed) above this."""
    max_first_position_bias: float = Field(default=0.15, ge=0, le=0.5)
    """|first-position win rate - 0.5| above this, among decisive verdicts."""
    min_rating_sd: float = Field(default=0.5, ge=0)
    """Single grading: standard deviation of the ratings below this (on the 1-10 scale)."""


class JudgeSpec(Strict):
    """Who judges and how. The judge is an instrument: its health is measured on every run."""

    backend: Literal["local", "openai"] = "local"
    """local: a model of the models file, served by its backend (hf, llama_cpp, an endpoint, ...); openai: an OpenAI-compatible
    chat endpoint (vLLM, llama.cpp server, Ollama, hosted APIs)."""
    variant: str | None = None
    """local: the model (base or variant name in --models) that judges; default the base."""
    mode: Literal["choice", "generate"] = "choice"
    """local: `choice` scores the verdict tokens ([[A]]/[[B]]/[[C]], or ratings 1-10) by
    log-likelihood after the judge prompt, so a small model always gives a parseable verdict
    (single ratings are the probability-weighted mean); `generate` samples a free-text
    judgment and parses it, as for an endpoint."""
    base_url: str | None = None
    """openai: e.g. http://localhost:8000/v1 (the /chat/completions path is appended)."""
    model: str | None = None
    """openai: the model name sent to the endpoint."""
    api_key_env: str | None = None
    """openai: name of the environment variable holding the API key (the key itself is never
    written to the store or the report)."""
    concurrency: int = Field(default=4, ge=1)
    """openai: requests in flight at once."""
    timeout_s: float = Field(default=60.0, gt=0)
    """openai: per-request timeout."""
    max_retries: int = Field(default=4, ge=0)
    """openai: retries after a 429, a 5xx, a timeout or a connection error, with exponential backoff."""
    backoff_s: float = Field(default=1.0, ge=0)
    """openai: first backoff delay; doubled after each retry."""
    temperature: float = Field(default=0.0, ge=0)
    """Judge sampling temperature (0: deterministic replies)."""
    samples: int | None = Field(default=None, ge=1)
    """Judge samples per comparison, combined by majority vote (verdicts) or median (ratings).
    Default: 1 at temperature 0, 3 above."""
    max_tokens: int = Field(default=512, ge=1)
    """Longest judgment generated (generate mode and endpoints)."""
    prompts: str | None = None
    """A judge-prompt file in MT-Bench's format (name, type, system_prompt, prompt_template,
    output_format), relative to the suite; default the prompts shipped with harness."""
    prompt: str | None = None
    """The prompt's name; default `single` or `pair`. Turn-2 items use `<name>-multi-turn`."""
    reference_prompt: str | None = None
    """Prompt for items that carry a reference answer; default `single-ref` or `pair-ref`.
    Set use_reference: false to grade every item without its reference."""
    use_reference: bool = True
    """Use an item's reference answer when it has one (reference-guided prompts)."""
    dimensions: list[str] = []
    """Single grading: score these dimensions separately (e.g. accuracy, relevance, format);
    the score is their mean and each is stored as judge_<dimension>."""
    anchors: str | None = None
    """A JSONL file of human-labelled items, judged on every run to measure agreement:
    pairwise {question, answer_a, answer_b, human: A|B|tie}; single {question, answer, human: 1-10}."""
    thresholds: HealthThresholds = HealthThresholds()

    @model_validator(mode="after")
    def _backend_fields(self):
        if self.backend == "openai":
            if not self.base_url or not self.model:
                raise ValueError("an openai judge needs base_url and model")
            if self.variant is not None:
                raise ValueError("variant applies to local judges only")
        elif self.base_url or self.model or self.api_key_env:
            raise ValueError("base_url, model and api_key_env apply to openai judges only (backend: openai)")
        if self.deterministic and (self.samples or 1) > 1:
            raise ValueError("choice mode is deterministic, so votes would repeat one answer; "
                             "use mode: generate with temperature > 0 for sampled votes")
        return self

    @property
    def deterministic(self) -> bool:
        """A local judge in choice mode always gives the same verdict for the same prompt."""
        return self.backend == "local" and self.mode == "choice"

    @property
    def n_samples(self) -> int:
        return self.samples or (1 if self.temperature == 0 or self.deterministic else 3)


class JudgeTaskSpec(Strict):
    """LLM-as-judge over another task's outputs: single-answer grading (1-10) or pairwise
    comparison against a baseline, in both orders by default."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    """The judge task's name (stored as the task of its runs)."""
    type: Literal["judge"]
    """Always `judge`: it grades another task's outputs."""
    grading: Literal["single", "pairwise"]
    """single: a 1-10 rating per output; pairwise: each variant against `baseline` (A/B/tie)."""
    of: str
    """The generation task (same suite) whose outputs are judged."""
    baseline: str | None = None
    """Pairwise: the variant (or --answers set) every other variant is compared against."""
    order: Literal["swap", "random"] = "swap"
    """Pairwise: `swap` judges every pair in both orders (a verdict that flips with the order
    is a tie, counted as inconsistent); `random` judges one seeded random order (half the calls)."""
    judge: JudgeSpec = JudgeSpec()

    @model_validator(mode="after")
    def _baseline(self):
        if self.grading == "pairwise" and not self.baseline:
            raise ValueError("pairwise judging needs a baseline (a variant name)")
        if self.grading == "single" and self.baseline:
            raise ValueError("baseline applies to pairwise judging only")
        if self.grading == "pairwise" and self.judge.dimensions:
            raise ValueError("judge.dimensions applies to single grading only")
        return self


def _task_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    # Not a string (a list, a mapping): the plugin member reports it as an unknown task type
    return kind if isinstance(kind, str) and (kind in BUILTIN_TASK_MODELS or kind == "judge") else "plugin"


AnyTask = Annotated[
    Annotated[MultipleChoiceTask, Tag("multiple_choice")] | Annotated[GenerationTask, Tag("generation")]
    | Annotated[LatencyTask, Tag("latency")] | Annotated[LoadTask, Tag("load")] | Annotated[PerplexityTask, Tag("perplexity")]
    | Annotated[ClassificationTask, Tag("classification")] | Annotated[LmEvalTask, Tag("lm_eval")]
    | Annotated[JudgeTaskSpec, Tag("judge")] | Annotated[PluginTask, Tag("plugin")],
    Discriminator(_task_tag),
]
"""A task of a suite: its `type` picks the model that validates it (a discriminated union)."""


class ContaminationSpec(Strict):
    """The contamination check run with every multiple-choice, generation, classification and perplexity task:
    each item's text fields and reference against every training set in the evaluated
    variant's lineage, plus the corpora listed here."""

    enabled: bool = True
    """false: skip the check (the report says it was not run)."""
    n: int = Field(default=13, ge=4, le=64)
    """Words per n-gram (13, as in GPT-3's and lm-eval's decontamination)."""
    threshold: float = Field(default=0.0, ge=0.0, lt=1.0)
    """An item is contaminated when more than this share of one field's n-grams is found in one
    source (0: any shared n-gram; a field shorter than n words counts when found whole)."""
    corpora: list[str] = []
    """More texts to check against (JSONL: every string value; other files: every line),
    relative to the suite file: e.g. a pretraining sample or a public benchmark's test set."""


class SuiteSpec(Strict):
    """A suite file: a named list of tasks."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    """The suite's name: stored with every run."""
    description: str = ""
    """Free text, for people reading the file."""
    seed: int = 1234
    """Seed for sampling-based decoding and any randomised step; recorded with every run."""
    contamination: ContaminationSpec = ContaminationSpec()
    tasks: list[AnyTask] = Field(min_length=1)
    """The tasks, run in order for each variant: evaluation tasks (`type:` multiple_choice, generation,
    classification, perplexity, latency) and judge tasks over a generation task of this suite."""

    @model_validator(mode="after")
    def _unique_task_names(self):
        names = [t.name for t in self.tasks]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"task names must be unique; repeated: {', '.join(dupes)}")
        generation = {t.name for t in self.tasks if t.type == "generation"}
        for t in self.tasks:
            if t.type == "judge" and t.of not in generation:
                raise ValueError(f"task '{t.name}': of: '{t.of}' is not a generation task of this suite "
                                 f"(generation tasks: {', '.join(sorted(generation)) or 'none'})")
            if t.type == "judge" and next(g for g in self.tasks if g.name == t.of).generation.n > 1:
                raise ValueError(f"task '{t.name}': '{t.of}' draws several outputs per item (generation.n); "
                                 "a judge grades one output per item: judge a task with n: 1")
        return self


def load_suite(path: Path | str) -> SuiteSpec:
    """Parse a suite file (structure only; see harness.tasks.prepare for data and scorer checks)."""
    return load_model_file(SuiteSpec, path)
