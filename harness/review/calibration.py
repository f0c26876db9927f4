"""Judge ratings corrected by people's ratings (prediction-powered inference, harness.stats.ppi):
the LLM judge rates every output of a variant on a dimension (metric judge_<dimension> of a
`judge` task with grading: single), a person rates a random slice of the same outputs on the same
dimension (`harness review import`, rating_<dimension> columns), and the variant's human-scale
mean is estimated from both, with an interval that accounts for both samples.

The report shows the judge's raw mean beside the corrected one; a gate rule with
`calibrated: true` is decided on the corrected estimate."""

from __future__ import annotations

from statistics import stdev

from harness.stats.ppi import CalibratedMean, calibrated_mean, rated_items_needed
from harness.store.db import Store

JUDGE_PREFIX = "judge_"


def judge_ratings(store: Store, variant: str, dimension: str, task: str | None = None) -> dict[str, float]:
    """The judge's rating per output (sample id) of `variant` on `dimension`, from its latest
    single-grading judge run (of `task`, the judge task's name, when given)."""
    rows = store.query("""SELECT s.sample_id, avg(s.value) AS value FROM latest_runs r JOIN scores s USING (run_id)
                          WHERE r.task_type = 'judge_single' AND r.variant = ? AND s.metric = ? AND s.value IS NOT NULL
                            AND (? IS NULL OR r.task = ?)
                          GROUP BY s.sample_id""", [variant, JUDGE_PREFIX + dimension, task, task])
    return {r["sample_id"]: r["value"] for r in rows}


def human_ratings(store: Store, variant: str, dimension: str) -> dict[str, float]:
    """People's ratings per output (sample id) of `variant` on `dimension` (review sheets)."""
    rows = store.query("""SELECT q.sample_id, avg(q.rating) AS rating FROM review_ratings q JOIN latest_runs r USING (run_id)
                          WHERE r.variant = ? AND q.dimension = ? AND q.rating = q.rating
                          GROUP BY q.sample_id""", [variant, dimension])
    return {r["sample_id"]: r["rating"] for r in rows}


def calibrated(store: Store, variant: str, dimension: str, confidence: float = 0.95,
               task: str | None = None) -> CalibratedMean | None:
    """The corrected mean of `variant` on `dimension`; None when fewer than 2 of its judged
    outputs were rated by a person."""
    judge = judge_ratings(store, variant, dimension, task)
    human = {k: v for k, v in human_ratings(store, variant, dimension).items() if k in judge}
    if len(human) < 2:
        return None
    return calibrated_mean(judge, human, confidence)


def calibrated_rows(store: Store, variants: list[str], confidence: float = 0.95) -> list[dict]:
    """Per variant and dimension with people's ratings of judged outputs: the judge's raw mean,
    the corrected mean and the people's slice alone, each with its interval (for the report)."""
    dims = [r["dimension"] for r in store.query("SELECT DISTINCT dimension FROM review_ratings ORDER BY dimension")]
    out = []
    for variant in variants:
        for dim in dims:
            est = calibrated(store, variant, dim, confidence)
            if est is not None:
                out.append({"variant": variant, "dimension": dim, "estimate": est})
    return out


def rated_needed(store: Store, variant: str, dimension: str, half_width: float, confidence: float,
                 task: str | None = None) -> tuple[int, int, int] | None:
    """(outputs people should rate, outputs judged, outputs rated now) for a calibrated interval
    of `variant` on `dimension` whose half-width is `half_width`. The spread of people's minus
    the judge's ratings comes from the slice rated so far, or, with fewer than 3 rated, is taken
    to be the judge's own spread (no agreement assumed), as is the people's own spread. None
    without judge ratings."""
    judge = judge_ratings(store, variant, dimension, task)
    if len(judge) < 3:
        return None
    human = {k: v for k, v in human_ratings(store, variant, dimension).items() if k in judge}
    judge_sd = stdev(judge.values())
    rated = len(human) >= 3
    residual_sd = stdev([human[k] - judge[k] for k in human]) if rated else judge_sd
    human_sd = stdev(human.values()) if rated else judge_sd
    return rated_items_needed(judge_sd, residual_sd, human_sd, 2 * half_width, len(judge), confidence), len(judge), len(human)
