"""Anomaly detection: pure functions over daily series (documented in docs/COST_ANALYTICS.md).

For a team × service daily series and a day *t*, the baseline uses the eight weeks before
*t*: a weekday factor ``f(w) = median(values on weekday w) / median(all values)`` (1 when a
weekday has fewer than three points), a level ``L = median(value_i / f(w_i))`` over the
last 28 days, the expected cost ``E = L · f(w_t)``, and a robust scale
``S = 1.4826 · MAD`` of the last 28 days' residuals ``value_i − L · f(w_i)`` (floored at
``scale_floor · E`` so near-constant series do not flag cents). Day *t* is anomalous when
``(x − E) / S ≥ sensitivity`` and ``x − E ≥ min_impact`` (absolute, per day): only
increases are anomalies (a drop in cost is not something to alert on).
Days with fewer than 21 days of history are not scored.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from statistics import median

HISTORY_DAYS = 56
LEVEL_DAYS = 28
MIN_HISTORY = 21


@dataclass(frozen=True)
class Score:
    day: dt.date
    actual: float
    expected: float
    scale: float
    z: float

    @property
    def impact(self) -> float:
        return self.actual - self.expected


def score_day(
    series: dict[dt.date, float], day: dt.date, *, scale_floor: float = 0.05
) -> Score | None:
    history = [
        (day - dt.timedelta(days=k), series.get(day - dt.timedelta(days=k), 0.0))
        for k in range(HISTORY_DAYS, 0, -1)
        if (day - dt.timedelta(days=k)) >= min(series)
    ]
    if len(history) < MIN_HISTORY:
        return None
    overall = median(v for _, v in history)
    factors = {}
    for w in range(7):
        vals = [v for d, v in history if d.weekday() == w]
        factors[w] = (median(vals) / overall) if (len(vals) >= 3 and overall > 0) else 1.0
        if factors[w] <= 0:
            factors[w] = 1.0
    recent = history[-LEVEL_DAYS:]
    level = median(v / factors[d.weekday()] for d, v in recent)
    residuals = [v - level * factors[d.weekday()] for d, v in recent]
    centre = median(residuals)
    mad = median(abs(r - centre) for r in residuals)
    expected = level * factors[day.weekday()]
    scale = max(1.4826 * mad, scale_floor * abs(expected), 1e-9)
    actual = series.get(day, 0.0)
    return Score(day, actual, expected, scale, (actual - expected) / scale)


def detect(
    series: dict[dt.date, float],
    days: list[dt.date],
    *,
    sensitivity: float = 4.0,
    min_impact: float = 10.0,
    scale_floor: float = 0.05,
) -> list[Score]:
    out = []
    if not series:
        return out
    for day in days:
        s = score_day(series, day, scale_floor=scale_floor)
        if s is None:
            continue
        if s.z >= sensitivity and s.impact >= min_impact:  # increases only
            out.append(s)
    return out
