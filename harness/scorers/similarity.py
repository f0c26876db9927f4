"""brand_similarity: cosine similarity of each output to the centroid of a reference corpus
(e.g. the brand's own tweets) in the offline MiniLM embedding space (harness[embed])."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from harness.config.loader import Strict, parse_model
from harness.data.loaders import read_jsonl_objects
from harness.errors import ConfigError
from harness.hashing import stable_hash
from harness.models.embeddings import SentenceEncoder
from harness.scorers import needs_config, scorer
from harness.stats.metricspec import Metric

SIMILARITY = Metric("brand_similarity", "similarity to the brand corpus", "higher", low=-1, high=1,
                    description="cosine similarity of the output to the brand corpus centroid (all-MiniLM-L6-v2)")


class SimilaritySpec(Strict):
    corpus: str
    """JSONL file of the reference texts, relative to the suite file."""
    field: str = "text"
    """The field of each line holding the text."""
    limit: int | None = Field(default=None, ge=1)


def configure(config: dict, where: str, base_dir: Path):
    spec = parse_model(SimilaritySpec, config, where)
    path = Path(spec.corpus) if Path(spec.corpus).is_absolute() else base_dir / spec.corpus
    if not path.is_file():
        raise ConfigError(f"{where}.corpus: {path} not found")

    texts = []
    for n, row in read_jsonl_objects(path):
        if spec.field not in row:
            raise ConfigError(f"{path}: line {n}: no field '{spec.field}' ({where}.field)")
        texts.append(str(row[spec.field]))
    texts = texts[: spec.limit] if spec.limit else texts
    state: dict = {}

    def similarity_scorer(sample, output) -> dict[str, float]:
        import numpy as np

        if "centroid" not in state:  # the encoder loads on first use, so validation stays model-free
            state["encoder"] = SentenceEncoder.default()
            c = state["encoder"].encode(texts).mean(axis=0)
            state["centroid"] = c / np.linalg.norm(c)
        v = state["encoder"].encode([output.text or " "])[0]
        return {"brand_similarity": float(v @ state["centroid"])}

    return brand_similarity.configured(similarity_scorer, None, stable_hash({"spec": spec.model_dump(), "texts": texts}))


brand_similarity = scorer(task_types=("generation",), metrics=(SIMILARITY,), configure=configure,
                          name="brand_similarity", description="cosine similarity to a corpus centroid; needs a config: "
                          "`- brand_similarity: {corpus: ../data/brand/train.jsonl, field: tweet}`")(needs_config("brand_similarity"))
