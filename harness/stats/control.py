"""Control limits for a metric tracked across runs (a Shewhart chart whose limits know each run's
own sampling error): is the latest run's value a change, or the noise of its items?

Each point is a run's mean and its standard error over items. A point is judged against the
points of the current segment before it: their mean is the centre line, and the limits are

    centre +- sigma * sqrt(between + se_point^2 + var_centre)

where `between` is the run-to-run variance beyond the items' own (estimated from the segment's
means once it has three points, 0 before) and var_centre the centre's own error. A point outside
is flagged; the first flagged point starts a new segment (the change point), so a step is flagged
where it happens and the points after it are judged against the new level. With sigma 3, a point
with no change is flagged about 0.3% of the time."""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import fmean, variance


@dataclass(frozen=True)
class ChartPoint:
    """One run on the chart: its value, and the limits it was judged against (None for a
    segment's first point, which has nothing before it)."""

    mean: float
    se: float
    centre: float | None
    low: float | None
    high: float | None
    flagged: bool
    change: bool
    """The first point of a new segment: where the level changed."""


def control_chart(points: list[tuple[float, float]], sigma: float = 3.0) -> list[ChartPoint]:
    """Judge each (mean, se) against the points of its segment before it (see the module)."""
    out: list[ChartPoint] = []
    start = 0
    for k, (mean, se) in enumerate(points):
        before = points[start:k]
        if not before:
            out.append(ChartPoint(mean, se, None, None, None, False, False))
            continue
        means = [m for m, _ in before]
        within = fmean(s ** 2 for _, s in before)
        between = max(0.0, variance(means) - within) if len(means) >= 3 else 0.0
        centre = fmean(means)
        var_centre = (within + between) / len(means)
        half = sigma * math.sqrt(between + se ** 2 + var_centre)
        flagged = not (centre - half <= mean <= centre + half)
        out.append(ChartPoint(mean, se, centre, centre - half, centre + half, flagged, flagged))
        if flagged:
            start = k  # the new level starts here
    return out
