"""What happened online: `harness outcomes import FILE` reads per-post outcomes of published
drafts (the A/B test and the editors' time), and the report shows per variant:

- the engagement rate (likes + reposts + replies over impressions) with an exact (Clopper-Pearson)
  interval, and the posts' own spread;
- the share of drafts used without heavy edits, exact binomial interval; edit time; the edit
  distance from draft to published text (word-level Levenshtein over the longer text's length);
- the power of the test as planned: the smallest relative lift in engagement rate that this many
  posts per variant detect (two-sided 5%, 80% power, from the per-post rates' spread);
- each variant against the report's baseline: the difference in mean per-post engagement rate
  (Welch's t on the posts, not a pooled binomial test: posts differ far more than impressions
  within a post do, and pooling would call noise a win), and in the share of drafts used (Fisher's
  exact test), each with its interval, p-value and a verdict that says when the posts cannot decide;
- which offline metric predicts the online outcome: Spearman's rank correlation, over the posts
  whose item was evaluated, between each offline metric of that item (the variant's latest run)
  and the post's engagement rate, with a bootstrap interval, so a team learns which offline gate
  is worth keeping.

The file is CSV (header row) or JSONL, one post per row: `variant` (required, a variant in the
store), `item_id` (the evaluated item the draft answered, optional), `impressions`, `likes`,
`reposts`, `replies` (counts >= 0), `used` (yes/no: used without heavy edits), `edit_seconds`,
`draft`, `published`. Every row is checked before anything is written; a bad row is exit 2
naming the line and field."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path
from statistics import NormalDist, fmean, stdev

from harness.config.loader import short_repr
from harness.data.loaders import read_jsonl_objects
from harness.errors import ConfigError
from harness.review.audit import FALSE, TRUE
from harness.stats.intervals import bootstrap_mean, bootstrap_statistic
from harness.store.db import Store
from harness.textfile import is_file, read_csv_rows

COUNTS = ("impressions", "likes", "reposts", "replies")
COLUMNS = ("variant", "item_id", *COUNTS, "used", "edit_seconds", "draft", "published")


def _rows(path: Path) -> list[tuple[int, dict]]:
    if path.suffix == ".jsonl":
        return read_jsonl_objects(path)
    header, rows = read_csv_rows(path)
    if "variant" not in header:
        raise ConfigError(f"{path}: not an outcomes file (needs a variant column; columns: {', '.join(COLUMNS)})")
    return rows


def _number(path: Path, line: int, field: str, value) -> float | None:
    """A count (or edit_seconds) of one row: None when blank, ConfigError naming the line and field
    when it is not a whole number >= 0 (edit_seconds: any number >= 0)."""
    if value is None or str(value).strip() == "":
        if field == "impressions":
            raise ConfigError(f"{path}: line {line}, field impressions: required (a count >= 1)")
        return None
    try:
        if isinstance(value, bool):  # JSON true/false: float() would read it as 1/0
            raise TypeError
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{path}: line {line}, field {field}: expected a number, got {short_repr(value)}") from None
    if not math.isfinite(number) or number < 0 or (field != "edit_seconds" and number != int(number)):
        raise ConfigError(f"{path}: line {line}, field {field}: expected a "
                          f"{'count (a whole number >= 0)' if field != 'edit_seconds' else 'number of seconds >= 0'}, got {short_repr(value)}")
    return number


def import_outcomes(store: Store, path: Path) -> int:
    """Check every row of `path`, then store them all (or nothing). Returns the rows stored."""
    if not is_file(path):
        raise ConfigError(f"{path}: file not found")
    known = {r["name"] for r in store.query("SELECT DISTINCT variant AS name FROM runs")}
    parsed = []
    for line, row in _rows(path):
        unknown = sorted(set(row) - set(COLUMNS))
        if unknown:
            raise ConfigError(f"{path}: line {line}: unknown field {unknown[0]!r} (fields: {', '.join(COLUMNS)})")
        for field in ("variant", "item_id", "used", "draft", "published"):
            # JSONL can hold any JSON type: text fields take text (an id or a yes/no also a number or true/false)
            value = row.get(field)
            if value is not None and not isinstance(value, (str, int, float) if field in ("item_id", "used") else str):
                raise ConfigError(f"{path}: line {line}, field {field}: expected text, got {type(value).__name__} {short_repr(value)}")
        variant = str(row.get("variant") or "").strip()
        if variant not in known:
            raise ConfigError(f"{path}: line {line}, field variant: {variant!r} is not a variant with runs in {store.path}"
                              + (f" (variants: {', '.join(sorted(known))})" if known else ""))
        rec: dict = {"line": line, "variant": variant, "item_id": str(row.get("item_id") or "").strip() or None}
        for field in (*COUNTS, "edit_seconds"):
            rec[field] = _number(path, line, field, row.get(field))
        if rec["impressions"] < 1:
            raise ConfigError(f"{path}: line {line}, field impressions: a post with no impressions has no rate (got {short_repr(row['impressions'])})")
        used = str(row.get("used") if row.get("used") is not None else "").strip().lower()
        if used and used not in TRUE | FALSE:
            raise ConfigError(f"{path}: line {line}, field used: expected yes or no, got {short_repr(row.get('used'))}")
        rec["used"] = None if not used else used in TRUE
        rec["draft"], rec["published"] = row.get("draft"), row.get("published")
        parsed.append(rec)
    if not parsed:
        raise ConfigError(f"{path}: no rows")
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    with store.transaction() as con:
        con.execute("DELETE FROM outcomes WHERE source = ?", [str(path.resolve())])
        con.executemany("INSERT INTO outcomes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [[str(path.resolve()), r["line"], r["variant"], r["item_id"], *(r[c] for c in COUNTS), r["used"],
                          r["edit_seconds"], r["draft"], r["published"], now] for r in parsed])
    return len(parsed)


def edit_distance(draft: str, published: str) -> float:
    """Word-level Levenshtein distance over the longer text's length (0: published as drafted)."""
    a, b = draft.split(), published.split()
    if not a and not b:
        return 0.0
    prev = list(range(len(b) + 1))
    for i, wa in enumerate(a, 1):
        cur = [i]
        for j, wb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (wa != wb)))
        prev = cur
    return prev[-1] / max(len(a), len(b))


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact binomial interval for k successes in n trials."""
    from scipy.stats import beta

    a = 1 - confidence
    low = 0.0 if k == 0 else float(beta.ppf(a / 2, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - a / 2, k + 1, n - k))
    return low, high


def detectable_lift(rates: list[float], n_posts: int, alpha: float = 0.05, power: float = 0.8) -> float | None:
    """The smallest relative lift in mean per-post engagement rate a two-sided test with
    `n_posts` posts per arm detects at this power, from the per-post rates' spread."""
    if len(rates) < 2 or fmean(rates) <= 0:
        return None
    z = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)
    return z * stdev(rates) * math.sqrt(2 / n_posts) / fmean(rates)


def compare_rates(baseline: list[float], candidate: list[float], confidence: float = 0.95) -> dict | None:
    """Welch's two-sample t comparison of per-post rates (candidate minus baseline): difference,
    its interval, the relative lift, the p-value and the verdict ('higher', 'lower' or 'cannot
    decide' when the interval holds 0). None with fewer than 2 posts on either side."""
    from scipy.stats import t as student_t

    if len(baseline) < 2 or len(candidate) < 2:
        return None
    m0, m1 = fmean(baseline), fmean(candidate)
    v0, v1 = stdev(baseline) ** 2 / len(baseline), stdev(candidate) ** 2 / len(candidate)
    diff, se = m1 - m0, math.sqrt(v0 + v1)
    if se == 0:
        return None
    dof = (v0 + v1) ** 2 / ((v0 ** 2 / (len(baseline) - 1)) + (v1 ** 2 / (len(candidate) - 1)))
    half = float(student_t.ppf(0.5 + confidence / 2, dof)) * se
    p = float(2 * student_t.sf(abs(diff) / se, dof))
    verdict = "cannot decide" if diff - half <= 0 <= diff + half else ("higher" if diff > 0 else "lower")
    return {"diff": diff, "low": diff - half, "high": diff + half, "lift": diff / m0 if m0 > 0 else None, "p": p, "verdict": verdict}


def compare_used(baseline: tuple[int, int], candidate: tuple[int, int], confidence: float = 0.95) -> dict | None:
    """Fisher's exact test of the share of drafts used, (used, rated) per side: the difference in
    shares, the p-value and the verdict at 1 - confidence."""
    from scipy.stats import fisher_exact

    (k0, n0), (k1, n1) = baseline, candidate
    if n0 == 0 or n1 == 0:
        return None
    p = float(fisher_exact([[k1, n1 - k1], [k0, n0 - k0]]).pvalue)
    diff = k1 / n1 - k0 / n0
    verdict = "cannot decide" if p > 1 - confidence else ("higher" if diff > 0 else "lower")
    return {"diff": diff, "p": p, "verdict": verdict}


def _spearman(a: list[float], b: list[float]) -> float:
    from scipy.stats import spearmanr

    if len(set(a)) < 2 or len(set(b)) < 2:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def outcome_view(store: Store, variants: list[str], confidence: float = 0.95, baseline: str | None = None) -> dict | None:
    """The report's online-outcomes section for these variants (None when nothing was imported),
    each compared with `baseline` (default: the first variant) when it has posts too."""
    rows = store.query("SELECT * FROM outcomes WHERE list_contains(?, variant) ORDER BY variant, source, line", [variants])
    if not rows:
        return None
    per_variant = []
    for v in variants:
        mine = [r for r in rows if r["variant"] == v]
        if not mine:
            continue
        engaged = [sum(r[c] or 0 for c in COUNTS[1:]) for r in mine]
        shown = [r["impressions"] for r in mine]
        rates = [e / s for e, s in zip(engaged, shown)]
        k, n = int(sum(engaged)), int(sum(shown))
        used = [r["used"] for r in mine if r["used"] is not None]
        edits = [edit_distance(r["draft"], r["published"]) for r in mine if r["draft"] and r["published"] is not None]
        seconds = [r["edit_seconds"] for r in mine if r["edit_seconds"] is not None]
        per_variant.append({
            "variant": v, "posts": len(mine), "impressions": n, "engagements": k,
            "rate": k / n if n else float("nan"), "rate_ci": clopper_pearson(min(k, n), n, confidence) if n else (float("nan"),) * 2,
            "post_rate": bootstrap_mean(rates, confidence=confidence) if len(rates) > 1 else None,
            "used": (sum(used) / len(used), *clopper_pearson(sum(used), len(used), confidence), len(used)) if used else None,
            "edit_distance": bootstrap_mean(edits, confidence=confidence) if len(edits) > 1 else None,
            "edit_seconds": bootstrap_mean(seconds, confidence=confidence) if len(seconds) > 1 else None,
            "detectable_lift": detectable_lift(rates, len(rates)),
            "_rates": rates, "_used": (sum(used), len(used)),
        })
    ref = next((v for v in per_variant if v["variant"] == (baseline or variants[0])), None)
    for v in per_variant:
        v["vs_baseline"] = None if ref is None or v is ref else {
            "baseline": ref["variant"], "rate": compare_rates(ref["_rates"], v["_rates"], confidence),
            "used": compare_used(ref["_used"], v["_used"], confidence)}
    for v in per_variant:
        del v["_rates"], v["_used"]
    return {"variants": per_variant, "baseline": ref["variant"] if ref else None, "predictors": predictors(store, rows, confidence)}


def predictors(store: Store, rows: list[dict], confidence: float = 0.95) -> list[dict]:
    """Spearman's rho between each offline per-item metric of a post's item (its variant's
    latest runs) and the post's engagement rate, over the posts with an evaluated item."""
    keyed = [r for r in rows if r["item_id"]]
    if not keyed:
        return []
    offline: dict[str, dict[tuple[str, str], float]] = {}
    for r in store.query("""SELECT l.variant, s.sample_id, s.metric, avg(s.value) AS value FROM latest_runs l JOIN scores s USING (run_id)
                            WHERE list_contains(?, l.variant) AND list_contains(?, s.sample_id) AND s.value IS NOT NULL
                            GROUP BY 1, 2, 3""", [sorted({r["variant"] for r in keyed}), sorted({r["item_id"] for r in keyed})]):
        offline.setdefault(r["metric"], {})[(r["variant"], r["sample_id"])] = r["value"]
    out = []
    for metric, values in sorted(offline.items()):
        pairs = [(values[(r["variant"], r["item_id"])], sum(r[c] or 0 for c in COUNTS[1:]) / r["impressions"])
                 for r in keyed if (r["variant"], r["item_id"]) in values]
        if len(pairs) < 5:
            continue
        a, b = [p[0] for p in pairs], [p[1] for p in pairs]
        rho = bootstrap_statistic(len(pairs), lambda idx, a=a, b=b: _spearman([a[i] for i in idx], [b[i] for i in idx]),
                                  1000, confidence, 0)
        if not math.isnan(rho.mean):
            out.append({"metric": metric, "n": len(pairs), "rho": rho})
    return sorted(out, key=lambda p: -abs(p["rho"].mean))
