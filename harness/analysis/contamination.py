"""Contamination: how much of an evaluation item appears in the data a variant was trained on.

The harness knows every training set in a variant's lineage (SFT data, preference pairs,
distillation prompts: the files each recipe declares), so it checks each evaluated item against
them, plus any corpora the suite declares. Texts are normalised (NFKC, lower case, words and
numbers only: punctuation, emoji and spacing don't hide a copy) and cut into word n-grams (13 by
default, as in GPT-3's and lm-eval's decontamination). Each n-gram is a 64-bit polynomial hash
over per-word hashes, computed with numpy over whole corpora: about a million training words a
second and 8 bytes per n-gram (benchmarks/contamination.py); a match of two different n-grams
needs a 64-bit collision.

Per item and per text field (prompt, reference): the share of its n-grams found in a source.
A field shorter than n words is checked as a whole: contaminated when it appears verbatim (as a
run of words) in a source. An item is contaminated when any field's overlap reaches
`threshold` (default: any shared n-gram)."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from harness.data.loaders import read_jsonl_objects
from harness.errors import ConfigError
from harness.stats.metricspec import Metric
from harness.store.db import ScoreRow
from harness.textfile import read_text

WORD = re.compile(r"\w+")
_P = 0x100000001B3  # the FNV-64 prime: odd, so multiplying by it is a bijection mod 2**64


def words(text: str) -> list[str]:
    """The normalised words of `text`: NFKC, lower case, runs of letters and digits."""
    return WORD.findall(unicodedata.normalize("NFKC", text).lower())


def _word_ids(tokens: list[str], cache: dict[str, int]):
    """A 64-bit id per word (blake2b of the word, computed once per distinct word)."""
    import numpy as np

    for t in set(tokens).difference(cache):
        cache[t] = int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little")
    return np.fromiter(map(cache.__getitem__, tokens), dtype=np.uint64, count=len(tokens))


def ngram_hashes(ids, n: int):
    """The hash of every run of `n` consecutive word ids (empty when there are fewer)."""
    import numpy as np

    m = len(ids) - n + 1
    if m <= 0:
        return np.empty(0, dtype=np.uint64)
    h = np.zeros(m, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(n):
            h = h * np.uint64(_P) + ids[j:j + m]
    return h


@dataclass
class Source:
    """One training set or declared corpus: its texts' word ids end to end, and the n-gram sets
    built from them (n-grams never span two texts)."""

    name: str
    ids: object = None
    """numpy uint64: every text's word ids, concatenated."""
    ends: object = None
    """numpy int64: where each text ends in `ids`."""
    n_words: int = 0
    _grams: dict = field(default_factory=dict)

    def grams(self, n: int):
        """Sorted unique hashes of every n-word run within one text (built once per n)."""
        import numpy as np

        if n not in self._grams:
            h = ngram_hashes(self.ids, n)
            if len(h):
                lengths = np.diff(np.concatenate(([0], self.ends)))
                end_of = np.repeat(self.ends, lengths)[:len(h)]  # the end of the text each window starts in
                h = h[np.arange(len(h)) + n <= end_of]
            self._grams[n] = np.unique(h)
        return self._grams[n]


@dataclass(frozen=True)
class Overlap:
    """How much of one item is found in the sources."""

    contaminated: bool
    overlap: float
    """The largest share of a field's n-grams found in one source (1.0: a short field found whole)."""
    source: str | None
    """The source of that largest overlap."""
    field: str | None
    """The field it was found for: a data field's name, or `reference`."""


class Index:
    """The n-gram index of a set of sources."""

    def __init__(self, n: int = 13, threshold: float = 0.0, min_words: int = 4):
        self.n, self.threshold, self.min_words = n, threshold, min_words
        self.sources: list[Source] = []
        self._ids: dict[str, int] = {}

    def add_texts(self, name: str, texts) -> Source:
        """Add a source from an iterable of texts."""
        import numpy as np

        tokens, ends = [], []
        for text in texts:
            tokens += words(text)
            ends.append(len(tokens))
        src = Source(name, _word_ids(tokens, self._ids), np.asarray(ends, dtype=np.int64), len(tokens))
        self.sources.append(src)
        return src

    def add_file(self, path: Path, name: str | None = None) -> Source:
        """Add a JSONL file (every string value of every row is a text), or any other text file
        (every line is a text)."""

        if path.suffix == ".jsonl":
            texts = [t for _, row in read_jsonl_objects(path) for t in _strings(row)]
        else:
            texts = read_text(path).split("\n")
        return self.add_texts(name or str(path), texts)

    def check(self, fields: dict[str, str | None]) -> Overlap:
        """The overlap of one item's fields with every source."""
        import numpy as np

        best = Overlap(False, 0.0, None, None)
        if not self.sources:
            return best
        for name, text in fields.items():
            if not text:
                continue
            tokens = words(text)
            if len(tokens) < self.min_words:
                continue  # too short to say anything ("Answer: B")
            ids = _word_ids(tokens, self._ids)
            k = min(self.n, len(ids))
            mine = np.unique(ngram_hashes(ids, k))
            for src in self.sources:
                grams = src.grams(k)
                at = np.searchsorted(grams, mine).clip(max=max(len(grams) - 1, 0))
                found = int((grams[at] == mine).sum()) if len(grams) else 0
                share = found / len(mine)
                if share > best.overlap:
                    best = Overlap(False, share, src.name, name)
        return Overlap(best.overlap > self.threshold, best.overlap, best.source, best.field)


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _metrics():
    return (
        Metric("contaminated", "contaminated item", "lower", values="binary", low=0, high=1,
               description="the item's text or reference overlaps the variant's training data (see the suite's contamination:)"),
        Metric("contamination_overlap", "training-data overlap", "lower", low=0, high=1,
               description="largest share of a field's n-grams found in one training source"),
    )


CONTAMINATION_METRICS = _metrics()
SCORER = "contamination"
"""The scorer name the check's rows carry."""


def suite_corpora(cspec, suite_path: Path) -> list[tuple[str, Path]]:
    """The corpora a suite declares, resolved; a missing file is a ConfigError."""

    out = []
    for i, c in enumerate(cspec.corpora):
        path = Path(c) if Path(c).is_absolute() else suite_path.parent / c
        if not path.is_file():
            raise ConfigError(f"{suite_path}: contamination.corpora[{i}]: {path} not found", hint="paths are relative to the suite file")
        out.append((f"corpus: {path.name}", path))
    return out


_INDEXES: dict = {}


def index_for(sources: list[tuple[str, Path]], n: int, threshold: float) -> Index:
    """An index over these files (built once per process and set of files)."""
    key = (tuple((label, str(p), p.stat().st_mtime_ns) for label, p in sources), n, threshold)
    if key not in _INDEXES:
        idx = Index(n, threshold)
        for label, path in sources:
            idx.add_file(path, label)
        _INDEXES[key] = idx
    return _INDEXES[key]


def item_fields(sample) -> dict[str, str | None]:
    """What of an item is checked: every text field of its data row, and its reference."""
    fields = {k: v for k, v in (sample.fields or {}).items() if isinstance(v, str)}
    for k, v in (sample.fields or {}).items():
        if isinstance(v, list) and all(isinstance(x, str) for x in v):
            fields[k] = "\n".join(v)  # MMLU's choices, MT-Bench's turns
    fields["reference"] = getattr(sample, "reference", None)
    return fields


def check_rows(run_id: str, sample_rows: list, items, index: Index) -> tuple[list, list]:
    """Each stored sample's contamination as two score rows (`contaminated`, `contamination_overlap`)
    and, in its details, the source and field of the largest overlap. Samples of multi-turn
    items (`<id>#t<k>`) carry their item's result."""
    from dataclasses import replace

    by_id = {s.id: s for s in items}
    results: dict[str, Overlap] = {}
    out_samples, scores = [], []
    for row in sample_rows:
        item = by_id.get(row.item_id or row.sample_id)
        if item is None:
            out_samples.append(row)
            continue
        if item.id not in results:
            results[item.id] = index.check(item_fields(item))
        r = results[item.id]
        details = json.loads(row.details) if row.details else {}
        details[SCORER] = {"overlap": round(r.overlap, 4), "source": r.source, "field": r.field, "n": index.n}
        out_samples.append(replace(row, details=json.dumps(details)))
        scores += [ScoreRow(run_id, row.sample_id, SCORER, "contaminated", float(r.contaminated)),
                   ScoreRow(run_id, row.sample_id, SCORER, "contamination_overlap", r.overlap)]
    return out_samples, scores
