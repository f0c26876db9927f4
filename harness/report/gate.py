"""`harness gate`: a report file's gate rules as hypothesis tests over the stored rows.

Every rule is a statement about a metric (non-inferiority against a baseline, superiority, or
an absolute bound), read in the direction the metric declares (lower is better for latency and
hallucination rate). Its test (harness.stats.hypothesis, chosen by the metric's values) gives one-sided
1 - alpha bounds and p-values, and the rule ends in one of four verdicts:

- pass: the bounds lie entirely on the good side of the threshold;
- fail: entirely on the bad side;
- inconclusive: they straddle it (too few items to decide), or the judge behind a judged metric
  failed its health checks;
- error: the rule can't be evaluated (missing run or metric, a --limit run, an unknown name).

With `statistics.multiplicity: holm` (the default) the decisions are made on Holm-adjusted
p-values across the gate's rules. Exit codes: 0 pass, 1 fail, 3 inconclusive, 2 error."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from statistics import NormalDist

from harness.analysis.coverage import missing_tasks, partial_runs
from harness.analysis.metrics import discordant, paired_counts, run_clusters, run_values, unclustered_runs, value_counts
from harness.analysis.pairing import identical_items, mismatch
from harness.config.report import GateRule, ReportSpec
from harness.registry import import_target
from harness.report.formatting import figure, p_value
from harness.review.calibration import calibrated
from harness.stats.clusters import clustered_mean_test, clustered_paired_test, is_clustered
from harness.stats.hypothesis import (
    SHAPE_MIN_N,
    TestOutcome,
    bootstrap_statistic_test,
    holm,
    mde,
    n_needed,
    one_sample_binary_counts,
    one_sample_test,
    paired_binary_counts,
    paired_test,
    quantile_test,
    ratio_test,
)
from harness.stats.metricspec import Metric, RunValues, Unavailable, resolve
from harness.store.db import Store
from harness.store.tags import tag_exists, tagged_run, tags

PASS, FAIL, ERROR, INCONCLUSIVE = 0, 1, 2, 3
NAN = float("nan")
EXIT_CODES = {"pass": PASS, "fail": FAIL, "inconclusive": INCONCLUSIVE, "error": ERROR}


@dataclass(frozen=True)
class Verdict:
    """One rule's outcome."""

    rule: GateRule
    status: str
    """pass, fail, inconclusive or error."""
    reason: str
    """Why, in words."""
    metric: Metric | None = None
    outcome: TestOutcome | None = None
    thresholds: tuple[float, ...] = ()
    good: str = ""
    """above (the estimate should exceed the threshold), below, or between (min and max)."""
    alpha: float = 0.05
    p_pass: float = NAN
    """One-sided p-value of 'the rule does not hold' (small: it holds)."""
    p_fail: float = NAN
    """One-sided p-value of 'the rule holds' (small: it is broken)."""
    p_adjusted: float = NAN
    """Holm-adjusted p-value of the decision (min of the two), across the gate's rules."""
    mde: float = NAN
    """Minimum detectable effect at this n (distance from the threshold, power from the report)."""
    n_needed: float = NAN
    """Inconclusive rules: items that would decide it if the observed gap is real (a percentile
    rule that can't be bounded at all yet: the requests that would let it be bounded)."""
    unbounded_percentile: bool = False
    """A percentile rule whose needed bound is infinite: too few requests to bound that
    percentile at all; n_needed is then the fewest that can."""
    notes: tuple[str, ...] = ()
    decided: bool = False
    """Whether the verdict comes from the test (not an error or a precondition)."""
    noise_band: float = NAN
    """The widest noise band (`harness noise`) of a variant the rule names, on its task and
    metric; NaN when none was measured."""
    inside_noise: bool = False
    """The rule's margin, or its estimate's distance from the threshold, lies inside the band:
    serving settings alone can move the figure that far."""

    @property
    def label(self) -> str:
        return self.rule.name or describe(self.rule)

    @property
    def p_value(self) -> float:
        """The raw p-value of the decision taken (pass or fail side)."""
        return min(self.p_pass, self.p_fail) if not math.isnan(self.p_pass) else NAN

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def line(self) -> str:
        return f"{self.status.upper():13}{self.label}: {self.detail}"

    @property
    def detail(self) -> str:
        """The evidence, in one line."""
        parts = [self.reason] + list(self.notes)
        return "; ".join(p for p in parts if p)


@dataclass(frozen=True)
class GateResult:
    verdicts: list[Verdict]
    warnings: list[str] = field(default_factory=list)
    """Missing tasks and partial runs of the variants the rules name."""

    def exit_code(self, inconclusive: str = "inconclusive") -> int:
        """0 pass, 1 fail, 3 inconclusive, 2 error (the worst verdict wins; an error first, as the
        gate could not be evaluated). `inconclusive`: map that verdict to pass or fail instead."""
        statuses = {v.status for v in self.verdicts}
        if "error" in statuses:
            return ERROR
        if "fail" in statuses:
            return FAIL
        if "inconclusive" in statuses:
            return {"pass": PASS, "fail": FAIL}.get(inconclusive, INCONCLUSIVE)
        return PASS

    @property
    def status(self) -> str:
        return {PASS: "pass", FAIL: "fail", INCONCLUSIVE: "inconclusive", ERROR: "error"}[self.exit_code()]


def describe(rule: GateRule) -> str:
    """A rule in words, used when it has no name."""
    where = f"{rule.task}/{rule.metric}" + (" (clean items)" if rule.clean_only else "")
    kind = rule.rule_kind
    baseline = f"{rule.baseline} at {rule.since}" if rule.since else rule.baseline
    if kind == "non_inferiority":
        return f"{rule.variant} vs {baseline} on {where}: worse by at most {rule.effective_margin:g}"
    if kind == "superiority":
        by = f" by more than {rule.effective_margin:g}" if rule.effective_margin else ""
        return f"{rule.variant} beats {baseline} on {where}{by}"
    bounds = [f">= {rule.min:g}" if rule.min is not None else "", f"<= {rule.max:g}" if rule.max is not None else ""]
    return f"{rule.variant} {where} {' and '.join(b for b in bounds if b)}"


class _RuleError(Exception):
    """A rule that can't be evaluated; the message says why."""


def _run(store: Store, variant: str, task: str) -> dict:
    rows = store.query("SELECT * FROM latest_runs WHERE variant = ? AND task = ?", [variant, task])
    if rows:
        return rows[0]
    known_variant = store.query("SELECT count(*) AS n FROM runs WHERE variant = ?", [variant])[0]["n"]
    if not known_variant:
        built = store.variant(variant)
        raise _RuleError(f"no runs of variant '{variant}' in the store"
                         + (" (it is built, but was never evaluated: `harness run ... --variant " + variant + "`)" if built else ""))
    tasks = [r["task"] for r in store.query("SELECT DISTINCT task FROM latest_runs WHERE variant = ? ORDER BY task", [variant])]
    raise _RuleError(f"variant '{variant}' has no run of task '{task}' (it has: {', '.join(tasks)})")


def _tagged(store: Store, rule: GateRule) -> dict:
    """The baseline's run under the rule's `since:` tag."""
    assert rule.since is not None and rule.baseline is not None
    run = tagged_run(store, rule.since, rule.baseline, rule.task)
    if run is not None:
        return run
    if not tag_exists(store, rule.since):
        known = [t["tag"] for t in tags(store)]
        raise _RuleError(f"since: no tag '{rule.since}' in the store (tags: {', '.join(known) or 'none yet'}); "
                         "tag a release's runs with `harness tag REPORT TAG` or `harness gate REPORT --tag TAG`")
    raise _RuleError(f"since: tag '{rule.since}' has no run of {rule.baseline} on {rule.task}")


def _item_values(store: Store, run: dict, metric: str, clean_only: bool = False) -> dict[str, float]:
    values = run_values(store, run["run_id"], metric)
    if not values:
        stored = [r["metric"] for r in store.query("SELECT DISTINCT metric FROM scores WHERE run_id = ? ORDER BY metric", [run["run_id"]])]
        raise _RuleError(f"no values of '{metric}' in {run['variant']}'s run of {run['task']} (it stores: {', '.join(stored) or 'none'})")
    if clean_only:
        flags = run_values(store, run["run_id"], "contaminated")
        if not flags:
            raise _RuleError(f"clean_only: {run['variant']}'s run of {run['task']} has no contamination check "
                             "(the suite's contamination: is disabled, or the run predates it; run it again)")
        values = {k: v for k, v in values.items() if flags.get(k) == 0.0}
        if not values:
            raise _RuleError(f"clean_only: every item of {run['variant']}'s run of {run['task']} is contaminated")
    return values


def _only_items(store: Store, run: dict, values: dict[str, float], items: frozenset[str]) -> dict[str, float]:
    """The values of the samples (a judge run's: of the samples it judged) that belong to `items`."""
    item_of = store.pairs("SELECT sample_id, coalesce(item_id, sample_id) FROM samples WHERE run_id = ?", [run["run_id"]])
    return {k: v for k, v in values.items() if item_of.get(k, k) in items}


def _health_failures(store: Store, run: dict) -> list[str]:
    rows = store.query("SELECT metric, warning FROM run_stats WHERE run_id = ? AND warning IS NOT NULL ORDER BY metric", [run["run_id"]])
    return [f"{r['metric']}: {r['warning']}" for r in rows]


def _run_values(store: Store, run: dict, metric: Metric, params: dict):
    if metric.statistic is None:
        stored = store.query("SELECT value FROM run_stats WHERE run_id = ? AND metric = ?", [run["run_id"], metric.name])
        if not stored or stored[0]["value"] is None:
            raise _RuleError(f"{run['variant']}'s run of {run['task']} has no '{metric.name}' figure")

        return RunValues(point=stored[0]["value"])

    try:
        values = import_target(metric.statistic)(store, run["run_id"], metric.name, params)
    except Unavailable as exc:
        raise _RuleError(f"'{metric.name}' of {run['variant']}'s run of {run['task']}: {exc}") from None
    if values.statistic is None and not values.values and values.point is None:
        raise _RuleError(f"'{metric.name}' can't be recomputed from {run['variant']}'s run of {run['task']} "
                         "(is the metric's setting, e.g. a price, missing from the task?)")
    return values


def _thresholds(rule: GateRule, metric: Metric) -> tuple[tuple[float, ...], str]:
    """(thresholds, good side) of the rule on the estimate (a difference for paired rules)."""
    kind = rule.rule_kind
    if kind == "bound":
        if rule.min is not None and rule.max is not None:
            return (rule.min, rule.max), "between"
        return ((rule.min,), "above") if rule.min is not None else ((rule.max,), "below")
    if metric.direction == "none":
        raise _RuleError(f"'{metric.name}' has no better direction ({metric.display}), so '{kind}' means nothing for it; "
                         "use a bound (min/max)")
    m = rule.effective_margin
    higher = metric.direction == "higher"
    if kind == "non_inferiority":
        return ((-m,), "above") if higher else ((m,), "below")
    return ((m,), "above") if higher else ((-m,), "below")


def _pairing(store: Store, rule: GateRule, spec: ReportSpec, cand: dict, base: dict | None, metric: Metric,
             notes: list[str]) -> frozenset[str] | None:
    """The items a rule may pair on: None (all: the runs saw the same data and prompts), or with
    `statistics.pairing: shared_items` the items with identical content in both. Runs that differ
    are an error otherwise, as is a judge run over runs that are no longer current."""
    problem = mismatch(store, cand, base)
    if problem is None:
        return None
    if base is None or spec.statistics.pairing != "shared_items" or "current run" in problem or "no longer" in problem:
        raise _RuleError(f"can't compare: {problem}" + ("; rerun the older variant, or set statistics.pairing: shared_items "
                                                        "in the report to pair on the items with identical content"
                                                        if base is not None and "different" in problem else ""))
    if metric.level != "item":
        raise _RuleError(f"can't compare: {problem}; '{metric.name}' is a run-level figure, which can't be restricted "
                         "to the shared items: rerun the older variant")
    items = identical_items(store, cand, base)
    if not items.ids:
        raise _RuleError(f"can't compare: {problem}, and no item has identical content in both runs")
    notes.append(items.words(rule.variant, rule.baseline or ""))
    return items.ids


def _test(store: Store, rule: GateRule, metric: Metric, params: dict, cand: dict, base: dict | None, threshold: float,
          alpha: float, spec: ReportSpec, shared: frozenset[str] | None = None) -> tuple[TestOutcome, list[str]]:
    if rule.calibrated:
        return _test_calibrated(store, rule, metric, params, base is not None, threshold, alpha)
    if rule.clean_only and metric.level != "item":
        raise _RuleError(f"clean_only applies to per-item metrics; '{metric.name}' is a run-level figure")
    if metric.level == "item":
        return _test_items(store, rule, metric, cand, base, threshold, alpha, spec, shared)
    return _test_run(store, rule, metric, params, cand, base, threshold, alpha, spec)


def _test_items(store: Store, rule: GateRule, metric: Metric, cand: dict, base: dict | None, threshold: float,
                alpha: float, spec: ReportSpec, shared_items: frozenset[str] | None = None
                ) -> tuple[TestOutcome, list[str]]:
    """A per-item metric: one-sample against the threshold, or paired on the items both runs have
    (`shared_items`: only on these item ids, those with identical content in both runs)."""
    st = spec.statistics
    notes: list[str] = []
    if metric.values == "binary" and not rule.clean_only and shared_items is None:
        counted = _binary_from_counts(store, metric, cand, base, threshold, alpha)
        if counted is not None:
            return counted
    c = _item_values(store, cand, metric.name, rule.clean_only)
    if shared_items is not None and base is not None:
        c = _only_items(store, cand, c, shared_items)
    if rule.clean_only:
        notes.append(f"on the {len(c)} items clear of {rule.variant}'s training data")
    # A declared range lets the tests bound what a sample too small or too skewed can't show.
    support = (metric.low, metric.high) if metric.low is not None and metric.high is not None else None
    clusters = run_clusters(store, cand["run_id"])
    if base is None:
        if is_clustered(clusters, c):
            return clustered_mean_test(c, clusters, threshold, alpha, st.resamples, st.seed, support), notes
        return one_sample_test(metric.values, list(c.values()), threshold, alpha, st.resamples, st.seed, support=support), notes
    b = _item_values(store, base, metric.name, rule.clean_only)
    if shared_items is not None:
        b = _only_items(store, base, b, shared_items)
    shared = sorted(set(c) & set(b))
    if not shared:
        raise _RuleError(f"'{rule.variant}' and '{rule.baseline}' share no items of {rule.task}")
    if len(shared) < max(len(c), len(b)):
        notes.append(f"paired on the {len(shared)} items both have ({rule.variant}: {len(c)}, {rule.baseline}: {len(b)})")
    if is_clustered(clusters, shared):
        return clustered_paired_test({k: c[k] for k in shared}, b, clusters, threshold, alpha, st.resamples, st.seed,
                                     support), notes
    cs, bs = [c[k] for k in shared], [b[k] for k in shared]
    return paired_test(metric.values, cs, bs, threshold, alpha, st.resamples, st.seed, support=support), notes


def _test_calibrated(store: Store, rule: GateRule, metric: Metric, params: dict, paired: bool, threshold: float,
                     alpha: float) -> tuple[TestOutcome, list[str]]:
    """A judge's rating corrected by people's ratings (harness.review.calibration): the variant's
    calibrated mean (or its difference from the baseline's, their errors added) against the
    threshold, normal one-sided bounds."""
    if not (metric.judged and "dimension" in params):
        raise _RuleError(f"calibrated: true applies to a judge's rating of a dimension (judge_<dimension>); '{rule.metric}' is not one")
    dim = params["dimension"]
    estimates = []
    for variant in [rule.variant] + ([rule.baseline] if paired and rule.baseline else []):
        est = calibrated(store, variant, dim, 1 - 2 * alpha, rule.task)
        if est is None:
            raise _RuleError(f"calibrated: no person rated {dim} on {variant}'s outputs judged in {rule.task} (2 or more needed): "
                             f"`harness review export --task <the judged task> --out sheet.csv`, fill rating_{dim}, then "
                             "`harness review import sheet.csv`")
        estimates.append(est)
    value = estimates[0].estimate - (estimates[1].estimate if len(estimates) > 1 else 0.0)
    se = math.sqrt(sum(e.se ** 2 for e in estimates))
    z = NormalDist().inv_cdf(1 - alpha)
    to = NormalDist().cdf((value - threshold) / se) if se > 0 else float(value > threshold)
    notes = [f"{e.n_rated} of {e.n_rated + e.n_unrated} outputs rated by people: judge {e.judge_mean:.2f} corrected to "
             f"{e.estimate:.2f} (judge bias {e.judge_bias:+.2f}, weight {e.weight:.2f})" for e in estimates]
    outcome = TestOutcome(value, value - z * se, value + z * se, 1 - to, to, sum(e.n_rated + e.n_unrated for e in estimates),
                          "prediction-powered inference (judge corrected by people's ratings)",
                          ("difference in " if paired else "") + f"calibrated {metric.display}", se)
    return outcome, notes


def _binary_from_counts(store: Store, metric: Metric, cand: dict, base: dict | None, threshold: float,
                        alpha: float) -> tuple[TestOutcome, list[str]] | None:
    """_test_items for 0/1 outcomes from what DuckDB counts (ones and items; the paired 2x2
    table): the exact tests need nothing else, so a 250,000-item run is never read into memory.
    None where counts can't stand in (the candidate's items share clusters, nothing stored: the
    item path says why)."""
    if cand["run_id"] not in unclustered_runs(store, [cand["run_id"]]):
        return None
    if base is None:
        counted = value_counts(store, [(cand["run_id"], metric.name)]).get((cand["run_id"], metric.name))
        if not counted:
            return None
        values, counts = counted
        return one_sample_binary_counts(sum(k for v, k in zip(values, counts) if v > 0.5), sum(counts), threshold, alpha), []
    table = paired_counts(store, cand["run_id"], base["run_id"], metric.name)
    if not table:
        return None
    n10, n01, n = discordant(table)
    notes = []
    sizes = {r["run_id"]: r["n"] for r in store.query(
        "SELECT run_id, count(value) AS n FROM scores WHERE list_contains(?, run_id) AND metric = ? GROUP BY run_id",
        [[cand["run_id"], base["run_id"]], metric.name])}
    nc, nb = sizes.get(cand["run_id"], 0), sizes.get(base["run_id"], 0)
    if n < max(nc, nb):
        notes.append(f"paired on the {n} items both have ({cand['variant']}: {nc}, {base['variant']}: {nb})")
    return paired_binary_counts(n10, n01, n, threshold, alpha), notes


def _test_run(store: Store, rule: GateRule, metric: Metric, params: dict, cand: dict, base: dict | None, threshold: float,
              alpha: float, spec: ReportSpec) -> tuple[TestOutcome, list[str]]:
    """A run-level figure: a single measurement, a quantile, a ratio of sums, or a resampled statistic."""
    st = spec.statistics
    notes: list[str] = []
    cv = _run_values(store, cand, metric, params)
    if cv.point is not None:
        if base is not None:
            raise _RuleError(f"'{metric.name}' is a single measurement per run (no items behind it): only bound rules apply")
        v = cv.point
        outcome = TestOutcome(v, v, v, NAN, NAN, 1, "single measurement", metric.display, NAN)  # decided by _single_measurement
    elif base is None:
        if metric.percentile and cv.values:
            return quantile_test(cv.values, int(params["q"]) / 100, threshold, alpha), notes
        if cv.ratio is not None:
            outcome = ratio_test(cv.ratio, threshold, alpha, st.resamples, st.seed, estimand=metric.display)
        else:
            outcome = bootstrap_statistic_test(cv.statistic, threshold, alpha, st.resamples, st.seed, estimand=metric.display)
    else:
        bv = _run_values(store, base, metric, params)
        if bv.statistic is None:
            raise _RuleError(f"'{metric.name}' of {rule.baseline} can't be resampled")
        outcome = bootstrap_statistic_test(cv.statistic, threshold, alpha, st.resamples, st.seed, baseline=bv.statistic,
                                           estimand=f"difference in {metric.display}")
    return outcome, notes


def evaluate_rule(store: Store, rule: GateRule, spec: ReportSpec) -> Verdict:
    """One rule's verdict before any multiplicity correction."""
    st = spec.statistics
    alpha = rule.alpha or st.alpha
    notes: list[str] = []
    if rule.statistic is not None:
        notes.append(f"statistic: {rule.statistic} is ignored (every rule is decided on its one-sided {1 - alpha:.0%} bounds)")
    try:
        found = resolve(rule.metric)
        if found is None:
            raise _RuleError(f"'{rule.metric}' is not a metric any scorer or task kind declares (`harness list metrics`)")
        metric, params = found
        cand = _run(store, rule.variant, rule.task)
        base = _tagged(store, rule) if rule.since else _run(store, rule.baseline, rule.task) if rule.baseline else None
        for run in (cand, base):
            if run is not None and run.get("partial") and not rule.allow_partial:
                of = f" of {run['n_items_total']}" if run.get("n_items_total") else ""
                raise _RuleError(f"{run['variant']}'s only run of {run['task']} is a --limit sample ({run['n_samples']}{of} items); "
                                 "rerun without --limit, or set allow_partial: true on the rule")
            if run is not None and run.get("partial"):
                notes.append(f"{run['variant']}: partial run ({run['n_samples']} of {run['n_items_total']} items), allowed by the rule")
        shared = _pairing(store, rule, spec, cand, base, metric, notes)
        thresholds, good = _thresholds(rule, metric)
        outcomes = []
        for t in thresholds:
            outcome, extra = _test(store, rule, metric, params, cand, base, t, alpha, spec, shared)
            outcomes.append(outcome)
        notes += [n for n in extra if n not in notes]
    except _RuleError as exc:
        return Verdict(rule, "error", str(exc), notes=tuple(notes), alpha=alpha)
    outcome = outcomes[0]
    if outcome.n == 0 or math.isnan(outcome.estimate):
        return Verdict(rule, "error", "no values to test", metric, outcome, thresholds, good, alpha, notes=tuple(notes))
    if outcome.method == "single measurement":
        return _with_noise(store, rule, _single_measurement(rule, metric, outcome, thresholds, good, alpha, notes))
    if good == "above":
        p_pass, p_fail = outcome.p_above, outcome.p_below
    elif good == "below":
        p_pass, p_fail = outcome.p_below, outcome.p_above
    else:
        low_o, high_o = outcomes
        p_pass, p_fail = max(low_o.p_above, high_o.p_below), min(low_o.p_below, high_o.p_above)
    nearest = min(thresholds, key=lambda t: abs(outcome.estimate - t))
    gap = outcome.estimate - nearest
    needed, unbounded = _items_needed(metric, params, outcome, gap, good, alpha, st.power)
    verdict = Verdict(rule, "pending", "", metric, outcome, thresholds, good, alpha, p_pass, p_fail,
                      mde=mde(outcome.se, alpha, st.power), n_needed=needed, unbounded_percentile=unbounded,
                      notes=tuple(notes), decided=True)
    verdict = _with_noise(store, rule, verdict)
    if metric.judged and rule.require_healthy_judge and not rule.calibrated:
        failures = _health_failures(store, cand) + (_health_failures(store, base) if base else [])
        if failures:
            return replace(verdict, status="inconclusive", decided=False,
                           reason=_evidence(verdict) + "; the judge failed its health checks (" + "; ".join(failures) + ")")
    return verdict


def _items_needed(metric: Metric, params: dict, outcome: TestOutcome, gap: float, good: str, alpha: float,
                  power: float) -> tuple[float, bool]:
    """(items that would decide a gap of the observed size, whether that is instead the fewest
    requests that can bound a percentile at all)."""
    if metric.percentile and ((good in ("below", "between") and math.isinf(outcome.high))
                              or (good in ("above", "between") and math.isinf(outcome.low))):
        # A percentile q is bounded above only once q^n <= alpha (below: (1 - q)^n): fewer
        # requests leave that bound infinite whatever they measure.
        q = int(params["q"]) / 100
        sides = ([q] if math.isinf(outcome.high) else []) + ([1 - q] if math.isinf(outcome.low) else [])
        if any(side >= 1 for side in sides):  # p100 from above, p0 from below: no sample bounds them
            return math.inf, True
        return float(max(math.ceil(math.log(alpha) / math.log(side)) for side in sides)), True
    needed = n_needed(outcome.n, outcome.se, gap, alpha, power)
    if outcome.n < SHAPE_MIN_N and "betting bound" in outcome.method and math.isfinite(needed):
        # the normal-approximation count assumes the bootstrap's width, which only SHAPE_MIN_N items get
        needed = float(max(needed, SHAPE_MIN_N))
    return needed, False


def _single_measurement(rule: GateRule, metric: Metric, outcome: TestOutcome, thresholds: tuple[float, ...], good: str,
                        alpha: float, notes: list[str]) -> Verdict:
    """A bound on one number, decided on its value and the rule's tolerance, with no p-value:
    pass when the whole band value +- tolerance clears the bound(s), fail when it lies wholly
    beyond one, inconclusive otherwise, and always inconclusive without a tolerance."""
    v, tol = outcome.estimate, rule.tolerance
    # One number has no sampling distribution: its band is the declared tolerance (none: unbounded).
    low, high = (v - tol, v + tol) if tol is not None else (-math.inf, math.inf)
    low, high = max(low, metric.low) if metric.low is not None else low, min(high, metric.high) if metric.high is not None else high
    outcome = replace(outcome, low=low, high=high, p_above=NAN, p_below=NAN)
    if good == "above":
        ok, broken = low >= thresholds[0], high < thresholds[0]
    elif good == "below":
        ok, broken = high <= thresholds[0], low > thresholds[0]
    else:
        ok, broken = low >= thresholds[0] and high <= thresholds[1], high < thresholds[0] or low > thresholds[1]
    verdict = Verdict(rule, "pass" if ok else "fail" if broken else "inconclusive", "", metric, outcome, thresholds, good,
                      alpha, notes=tuple(notes))
    reason = _evidence(verdict)
    if rule.tolerance is None:
        reason += ("; one measurement has no sampling distribution, so nothing says how far it is from the truth: "
                   "declare the rule's tolerance (`tolerance:`, how far the figure may be off) to decide it")
    elif not ok and not broken:
        reason += f"; the bound lies within the tolerance ±{rule.tolerance:g}"
    return replace(verdict, reason=reason)


def _with_noise(store: Store, rule: GateRule, verdict: Verdict) -> Verdict:
    """The verdict marked when a variant it names moves by more than the rule can tell under
    serving settings alone (its noise band from `harness noise`)."""
    bands = [b for b in (store.noise_band(v, rule.task, rule.metric) for v in (rule.variant, rule.baseline) if v)
             if b is not None and b["band"] is not None]
    if not bands or verdict.outcome is None:
        return verdict
    widest = max(bands, key=lambda b: b["band"])
    band = float(widest["band"])
    if rule.baseline:  # a comparison: its margin, or the observed difference itself
        margin, gap = rule.effective_margin, abs(verdict.outcome.estimate)
        small_margin = 0 < margin <= band
        inside = small_margin or gap <= band
        what = f"the margin {margin:g}" if small_margin else f"the observed difference ({verdict.outcome.estimate:+.3g})"
    else:  # a bound: the estimate's distance from it
        gap = min(abs(verdict.outcome.estimate - t) for t in verdict.thresholds)
        inside = gap <= band
        what = f"the estimate's distance from the threshold ({gap:.3g})"
    note = (f"INSIDE NOISE BAND: {what} is within {widest['variant']}'s noise band ±{band:.3g} (serving settings alone "
            f"moved {rule.metric} that far on {widest['n_items']} items: `harness noise`); this verdict may certify noise"
            if inside else f"noise band of {widest['variant']}: ±{band:.3g} ({widest['n_items']} items), outside the rule's margin")
    return replace(verdict, noise_band=band, inside_noise=inside, notes=verdict.notes + (note,))


def _evidence(v: Verdict) -> str:
    o = v.outcome
    conf = f"{1 - v.alpha:.0%}"
    what = "difference" if v.rule.baseline else o.estimand
    thresholds = " and ".join(f"{t:+.4g}" if v.rule.baseline else f"{t:.4g}" for t in v.thresholds)
    if o.method == "single measurement":
        bounds = f" ± {v.rule.tolerance:g} (declared tolerance)" if v.rule.tolerance is not None else ""
    else:
        bounds = f", one-sided {conf} bounds [{figure(o.low)}, {figure(o.high)}]"
    return f"{what} {figure(o.estimate)}{bounds} vs {thresholds} (n={o.n}, {o.method})"


TOO_MANY = 1_000_000
"""An estimate so close to its threshold that deciding it needs more items than this (more than
any benchmark has) is said to sit on it: the number itself would read as a plan."""


def needed_words(v: Verdict) -> str:
    """What would decide an inconclusive rule, in words: the requests a percentile needs before
    it can be bounded at all, the items for a gap of the observed size, or that none will."""
    n = v.outcome.n if v.outcome is not None else 0
    if v.unbounded_percentile:
        if math.isinf(v.n_needed):
            return f"a {v.outcome.estimand} can never be bounded on that side from a sample: choose another percentile"
        return (f"{n} requests can't bound a {v.outcome.estimand} at all at this alpha: at least "
                f"{int(v.n_needed)} are needed before the rule can be decided")
    if math.isinf(v.n_needed) or (not math.isnan(v.n_needed) and v.n_needed > TOO_MANY):
        return ("the estimate sits on the threshold: no practical number of items decides a gap this small"
                + (f" (over {TOO_MANY:,})" if not math.isinf(v.n_needed) else ""))
    if math.isnan(v.n_needed):
        return "no estimate of the items it would need (no spread in the data)"
    return f"about {int(v.n_needed)} items would decide a gap this size"


def format_p(p: float) -> str:
    """'=0.271', or '<0.001'."""
    text = p_value(p)
    return text if text.startswith("<") else f"={text}"


def decide(verdicts: list[Verdict], multiplicity: str) -> list[Verdict]:
    """Final verdicts: each tested rule passes or fails when its (Holm-adjusted) p-value is at
    most its alpha, and is inconclusive otherwise."""
    tested = [i for i, v in enumerate(verdicts) if v.decided]
    raw = [verdicts[i].p_value for i in tested]
    adjusted = holm(raw) if multiplicity == "holm" else raw
    out = list(verdicts)
    for i, adj in zip(tested, adjusted):
        v = out[i]
        side = "pass" if v.p_pass <= v.p_fail else "fail"
        status = side if adj <= v.alpha else "inconclusive"
        p_words = f"p{format_p(v.p_value)}" + (f", Holm p{format_p(adj)}" if multiplicity == "holm" and len(tested) > 1 else "")
        reason = f"{_evidence(v)}, {p_words}"
        if status == "inconclusive":
            reason += ("; the data can't decide" + (f": MDE {figure(v.mde)} at this n" if not math.isnan(v.mde) else "")
                       + "; " + needed_words(v))
        out[i] = replace(v, status=status, reason=reason, p_adjusted=adj)
    return out


def evaluate_gate(store: Store, spec: ReportSpec) -> GateResult:
    """Every rule's verdict (Holm-adjusted across the rules), with warnings about missing tasks
    and partial runs of the variants the rules name."""

    verdicts = decide([evaluate_rule(store, rule, spec) for rule in spec.gate], spec.statistics.multiplicity)
    variants = sorted({r.variant for r in spec.gate} | {r.baseline for r in spec.gate if r.baseline})
    warnings = [g.words() for g in missing_tasks(store, variants)]
    warnings += [p.words() for p in partial_runs(store, variants)]
    return GateResult(verdicts, warnings)
