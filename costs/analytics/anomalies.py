"""Anomaly detection: pure functions over daily series (documented in docs/COST_ANALYTICS.md).

For a team × service daily series and a day *t*, the baseline uses the eight weeks before
*t*: a weekday factor ``f(w) = median(values on weekday w) / median(all values)`` (1 when a
weekday has fewer than three points), a level ``L = median(value_i / f(w_i))`` over the
last 28 days, the expected cost ``E = L · f(w_t)``, and a robust scale
``S = 1.4826 · MAD`` of the last 28 days' residuals ``value_i − L · f(w_i)`` (floored at
``scale_floor · E`` so near-constant series do not flag cents). Day *t* is anomalous when
``(x − E) / S ≥ sensitivity`` and ``x − E ≥ min_impact`` (absolute, per day): only
increases are anomalies (a drop in cost is not something to alert on).
A day with fewer than 21 but at least 7 days of history (a new service, or a short export)
falls back to a non-seasonal robust baseline: ``E = median`` of the available days (at most
the last 28) and ``S = 1.4826 · MAD`` of them (same floor); ``Score.baseline`` says which
baseline scored the day. Days with fewer than 7 days of history are not scored.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from statistics import median

HISTORY_DAYS = 56
LEVEL_DAYS = 28
MIN_HISTORY = 21
FALLBACK_MIN_HISTORY = 7


@dataclass(frozen=True)
class Score:
    day: dt.date
    actual: float
    expected: float
    scale: float
    z: float
    baseline: str = "seasonal"  # "seasonal" (weekday-aware) or "trailing" (fallback)

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
    if len(history) < FALLBACK_MIN_HISTORY:
        return None
    actual = series.get(day, 0.0)
    if len(history) < MIN_HISTORY:
        return _score_trailing(history, day, actual, scale_floor)
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
    return Score(day, actual, expected, scale, (actual - expected) / scale)


def _score_trailing(
    history: list[tuple[dt.date, float]], day: dt.date, actual: float, scale_floor: float
) -> Score:
    """Non-seasonal fallback for short histories: trailing median and MAD."""
    values = [v for _, v in history[-LEVEL_DAYS:]]
    expected = median(values)
    mad = median(abs(v - expected) for v in values)
    scale = max(1.4826 * mad, scale_floor * abs(expected), 1e-9)
    return Score(day, actual, expected, scale, (actual - expected) / scale, "trailing")


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
