"""Judge health: how far a judge's verdicts can be trusted, measured on every judged run.

Pairwise (per judge call, candidate vs baseline):
- consistency: share of items whose verdict survives the order swap (both orders parsed);
- first_position_win_rate: among decisive calls, how often the answer shown first won (0.5 = no bias);
- longer_wins: among decisive calls with unequal lengths, how often the longer answer won;
- length_slope and lc_win_rate: a logistic fit of the call's outcome (candidate win 1, tie 0.5,
  loss 0) on the length difference in 100s of characters: the slope is the length bias, and
  sigmoid(intercept) is the win rate at zero length difference (AlpacaEval 2's length control);
- win_rate (ties count half), tie_rate, parse_failure_rate, error_rate;
- with human anchors: anchor_agreement and Cohen's kappa.
Single grading: mean_rating, rating_sd (a judge that gives every answer the same rating
separates nothing), length_correlation (Spearman), parse/error rates, and with anchors
agreement within one point and quadratic-weighted kappa.
Every figure has a bootstrap CI over items (anchors for the anchor figures)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.stats.intervals import Estimate, bootstrap_statistic

NAN = float("nan")


@dataclass(frozen=True)
class PairCall:
    item: str
    position: str
    """candidate_first or candidate_second."""
    winner: str | None
    """candidate, baseline, tie; None when the reply was unparsed or the call failed."""
    len_candidate: int
    len_baseline: int
    failed: bool = False


@dataclass(frozen=True)
class HealthFigure:
    metric: str
    estimate: Estimate
    warning: str | None = None


def _est(n: int, statistic, resamples: int, seed: int) -> Estimate:
    if n == 0:
        return Estimate(NAN, NAN, NAN, 0)
    return bootstrap_statistic(n, statistic, resamples, 0.95, seed)


def _rate(flags: list[float], resamples: int, seed: int) -> Estimate:
    return _est(len(flags), lambda idx: sum(flags[i] for i in idx) / len(idx), resamples, seed)


def _figure(items: list, point, resamples: int, seed: int) -> Estimate:
    """A figure `point(items) -> (value, units)` with a bootstrap CI over items (so the calls of
    one item, which are not independent, are resampled together); n = the units behind it."""
    value, units = point(items)
    if units == 0 or math.isnan(value):
        return Estimate(NAN, NAN, NAN, units)
    est = bootstrap_statistic(len(items), lambda idx: point([items[i] for i in idx])[0], resamples, 0.95, seed)
    return Estimate(value, est.low, est.high, units)


def logistic_fit(x: list[float], y: list[float], iterations: int = 50) -> tuple[float, float]:
    """(intercept, slope) of a logistic regression of y in [0, 1] (fractional targets allowed)
    on x, by Newton's method with a tiny ridge so a separable sample still converges."""
    import numpy as np

    X = np.column_stack([np.ones(len(x)), np.asarray(x, dtype=float)])
    Y = np.asarray(y, dtype=float)
    if np.allclose(X[:, 1], X[0, 1]):
        X = X[:, :1]  # no length variation: intercept only
    beta = np.zeros(X.shape[1])
    ridge = 1e-3 * np.eye(X.shape[1])
    ridge[0, 0] = 0.0  # no penalty on the intercept (it is the quantity reported)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(X @ beta, -30, 30)))
        w = np.maximum(p * (1 - p), 1e-9)
        grad = X.T @ (Y - p) - ridge @ beta
        hess = (X.T * w) @ X + ridge
        step = np.linalg.solve(hess + 1e-9 * np.eye(X.shape[1]), grad)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-8:
            break
    return float(beta[0]), float(beta[1]) if len(beta) > 1 else 0.0


def cohen_kappa(a: list, b: list, categories: list, weights: str | None = None) -> float:
    """Cohen's kappa of two label lists (weights='quadratic' for ordinal categories); NaN when
    chance agreement is total (one category only), where kappa is undefined."""
    import numpy as np

    k = len(categories)
    if not a or k < 2:
        return NAN
    index = {c: i for i, c in enumerate(categories)}
    obs = np.zeros((k, k))
    for x, y in zip(a, b):
        obs[index[x], index[y]] += 1
    obs /= obs.sum()
    exp = np.outer(obs.sum(axis=1), obs.sum(axis=0))
    i, j = np.indices((k, k))
    w = ((i - j) ** 2) / ((k - 1) ** 2) if weights == "quadratic" else (i != j).astype(float)
    denom = (w * exp).sum()
    return NAN if denom == 0 else float(1 - (w * obs).sum() / denom)


PAIRWISE_FIGURES = ("win_rate", "tie_rate", "consistency", "first_position_win_rate", "longer_wins", "lc_win_rate",
                    "length_slope", "parse_failure_rate", "error_rate")
SINGLE_FIGURES = ("mean_rating", "rating_sd", "length_correlation", "parse_failure_rate", "error_rate")


def _mean(flags: list[float]) -> tuple[float, int]:
    return (sum(flags) / len(flags) if flags else NAN), len(flags)


def pairwise_point(metric: str, by_item: dict[str, list[PairCall]], final: dict[str, str | None], items) -> tuple[float, int]:
    """One pairwise health figure over a multiset of items (repeats count again): (value, units)."""
    calls = [c for i in items for c in by_item.get(i, [])]
    if metric in ("win_rate", "tie_rate"):
        decided = [final[i] for i in items if final.get(i) is not None]
        if metric == "win_rate":
            return _mean([1.0 if w == "candidate" else 0.5 if w == "tie" else 0.0 for w in decided])
        return _mean([float(w == "tie") for w in decided])
    if metric == "consistency":
        swapped = [i for i in items if {c.position for c in by_item.get(i, []) if c.winner is not None}
                   == {"candidate_first", "candidate_second"}]
        return _mean([float(len({c.winner for c in by_item[i] if c.winner is not None}) == 1) for i in swapped])
    decisive = [c for c in calls if c.winner in ("candidate", "baseline")]
    if metric == "first_position_win_rate":
        return _mean([float((c.winner == "candidate") == (c.position == "candidate_first")) for c in decisive])
    if metric == "longer_wins":
        unequal = [c for c in decisive if c.len_candidate != c.len_baseline]
        return _mean([float((c.winner == "candidate") == (c.len_candidate > c.len_baseline)) for c in unequal])
    if metric in ("lc_win_rate", "length_slope"):
        judged = [c for c in calls if c.winner is not None]
        if not judged:
            return NAN, 0
        b0, b1 = logistic_fit([(c.len_candidate - c.len_baseline) / 100.0 for c in judged],
                              [1.0 if c.winner == "candidate" else 0.5 if c.winner == "tie" else 0.0 for c in judged])
        return (1 / (1 + math.exp(-b0)) if metric == "lc_win_rate" else b1), len({c.item for c in judged})
    if metric == "parse_failure_rate":
        return _mean([float(c.winner is None) for c in calls if not c.failed])
    if metric == "error_rate":
        return _mean([float(c.failed) for c in calls])
    raise ValueError(f"unknown pairwise health figure {metric!r}")


def pairwise_health(calls: list[PairCall], final: dict[str, str | None], anchors: list[tuple[str | None, str]],
                    resamples: int = 1000, seed: int = 0) -> list[HealthFigure]:
    """Health figures of a pairwise judge run. `final`: item -> candidate/baseline/tie (None if
    unjudgeable); `anchors`: (judge's final label, human label) in A/B/tie terms. CIs resample items."""
    items = sorted({c.item for c in calls})
    by_item: dict[str, list[PairCall]] = {}
    for c in calls:
        by_item.setdefault(c.item, []).append(c)
    out = []
    for metric in PAIRWISE_FIGURES:
        # The length-controlled fit is refitted per resample: fewer resamples.
        r = min(resamples, 300) if metric in ("lc_win_rate", "length_slope") else resamples
        out.append(HealthFigure(metric, _figure(items, lambda its, m=metric: pairwise_point(m, by_item, final, its), r, seed)))
    out += _anchor_figures(anchors, ["A", "B", "tie"], None, resamples, seed)
    return out


def single_point(metric: str, ratings: list[tuple[float | None, int, bool]], items) -> tuple[float, int]:
    """One single-grading health figure over a multiset of item positions in `ratings`."""
    rows = [ratings[i] for i in items]
    rated = [(r, n) for r, n, failed in rows if r is not None]
    if metric == "mean_rating":
        return _mean([r for r, _ in rated])
    if metric == "rating_sd":
        return _sd([r for r, _ in rated]), len(rated)
    if metric == "length_correlation":
        return _spearman(rated), len(rated)
    if metric == "parse_failure_rate":
        return _mean([float(r is None) for r, _, failed in rows if not failed])
    if metric == "error_rate":
        return _mean([float(failed) for _, _, failed in rows])
    raise ValueError(f"unknown single-grading health figure {metric!r}")


def single_health(ratings: list[tuple[float | None, int, bool]], anchors: list[tuple[float | None, float]],
                  resamples: int = 1000, seed: int = 0) -> list[HealthFigure]:
    """Health figures of a single-grading run. `ratings`: (rating or None, answer length,
    call failed) per judged item; `anchors`: (judge rating, human rating)."""
    items = list(range(len(ratings)))
    out = []
    for metric in SINGLE_FIGURES:
        r = min(resamples, 300) if metric in ("rating_sd", "length_correlation") else resamples
        out.append(HealthFigure(metric, _figure(items, lambda its, m=metric: single_point(m, ratings, its), r, seed)))
    out += _anchor_figures(rounded_rating_anchors(anchors), RATING_CATEGORIES, "quadratic", resamples, seed, within=1)
    return out


RATING_CATEGORIES = list(range(1, 11))


def rounded_rating_anchors(anchors: list[tuple[float | None, float]]) -> list[tuple[int | None, int]]:
    """(judge, human) ratings as whole points 1-10, the categories kappa compares."""
    def whole(x: float) -> int:
        return int(min(10, max(1, round(x))))

    return [(None if j is None else whole(j), whole(h)) for j, h in anchors]


def anchor_agrees(judge, human, within: int = 0) -> float:
    """1 when the judge's label matches the human's (ratings: within `within` points)."""
    return float(abs(judge - human) <= within) if within else float(judge == human)


def _anchor_figures(anchors: list, categories: list, weights: str | None, resamples: int, seed: int,
                    within: int = 0) -> list[HealthFigure]:
    if not anchors:
        return []
    pairs = [(j, h) for j, h in anchors if j is not None]
    agree = [anchor_agrees(j, h, within) for j, h in pairs]
    return [HealthFigure("anchor_agreement", _rate(agree, resamples, seed)),
            HealthFigure("anchor_kappa", _est(len(pairs), lambda idx: cohen_kappa([pairs[i][0] for i in idx], [pairs[i][1] for i in idx],
                                                                                      categories, weights), resamples, seed)),
            HealthFigure("anchor_coverage", Estimate(len(pairs) / len(anchors), NAN, NAN, len(anchors)))]


def _sd(values: list[float]) -> float:
    import statistics

    return statistics.pstdev(values) if len(values) > 1 else NAN


def _spearman(pairs: list[tuple[float, int]]) -> float:
    """Spearman's rank correlation with tied ranks averaged (scipy); NaN when either side is constant."""
    from scipy.stats import spearmanr

    if len(pairs) < 3 or len({p[0] for p in pairs}) < 2 or len({p[1] for p in pairs}) < 2:
        return NAN
    return float(spearmanr([p[0] for p in pairs], [p[1] for p in pairs]).statistic)


def warnings_for(figures: list[HealthFigure], thresholds) -> list[HealthFigure]:
    """The same figures, with a warning attached where a threshold is crossed."""
    out = []
    for f in figures:
        v, w = f.estimate.mean, None
        if f.metric == "consistency" and not math.isnan(v) and v < thresholds.min_consistency:
            w = f"order-swap consistency {v:.0%} < {thresholds.min_consistency:.0%}: verdicts depend on answer position"
        elif f.metric == "anchor_kappa" and not math.isnan(v) and v < thresholds.min_kappa:
            w = f"kappa with human labels {v:.2f} < {thresholds.min_kappa:.2f}: the judge does not agree with people"
        elif f.metric == "anchor_kappa" and math.isnan(v):
            w = "kappa with human labels is undefined (the judge gave one label only)"
        elif f.metric in ("parse_failure_rate", "error_rate") and not math.isnan(v) and v > thresholds.max_parse_failure:
            what = "replies could not be parsed" if f.metric == "parse_failure_rate" else "calls failed"
            w = f"{v:.0%} of judge {what} (> {thresholds.max_parse_failure:.0%})"
        elif f.metric == "rating_sd" and not math.isnan(v) and v < thresholds.min_rating_sd:
            w = f"ratings barely vary (sd {v:.2f} < {thresholds.min_rating_sd:.2f}): the judge does not separate answers"
        elif f.metric == "first_position_win_rate" and not math.isnan(v) and abs(v - 0.5) > thresholds.max_first_position_bias:
            w = f"the answer shown {'first' if v > 0.5 else 'second'} wins {max(v, 1 - v):.0%} of decisive verdicts: position bias"
        out.append(HealthFigure(f.metric, f.estimate, w))
    return out
