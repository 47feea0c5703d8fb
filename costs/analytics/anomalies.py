"""Anomaly detection: pure functions over daily series (documented in docs/COST_ANALYTICS.md).

For a team × service daily series and a day *t*, the history is the (at most) 56 days before
*t*, counted from the series' first day (a missing day inside the span is a zero).

* **Warm-up.** Fewer than ``FALLBACK_MIN_HISTORY`` (7) days of history, or fewer than
  ``MIN_BILLED_DAYS`` (7) billed (non-zero) days in it: not scored. A new or sparse series
  does not alert until it has a history to compare with.
* **Expected cost E.** With at least ``MIN_HISTORY`` (28) days: a weekday factor
  ``f(w) = median(values on weekday w) / median(all values)`` (1 when a weekday has fewer
  than three points), a level ``L = median(value_i / f(w_i))`` over the last 28 days and
  ``E = L · f(w_t)`` ("seasonal"). With 7–27 days: ``E = median`` of them ("trailing");
  three points per weekday over-fit bursty series, so the seasonal model waits for four.
* **Scale S** of the last 28 days' residuals ``r_i = value_i − expected_i``: the largest of
  ``1.4826 · MAD(r)`` (the usual spread), the upper-tail spread
  ``(Q90(r) − median(r)) / 1.2816`` when it is more than ``TAIL_RATIO`` (2) times the MAD
  term (bursty, heavy-tailed series whose ordinary busy days reach far above the median get
  a band as wide as those days; for Gaussian noise both terms estimate σ and the tail is not
  used) and ``scale_floor · |E|`` (near-constant series do not flag cents).
* **A day qualifies** when ``x − E ≥ min_impact`` (absolute currency per day),
  ``x ≥ (1 + min_relative) · E`` and either ``z = (x − E) / S ≥ sensitivity`` (rule
  ``spike``) or it is the ``sustain_days``-th (3) day in a row at ``z ≥ sustain_z`` (2) (rule
  ``sustained``: a moderate level shift no single day of which stands out). Increases only.
* **One alert per episode.** Qualifying days no more than ``episode_gap`` days apart form
  one episode; only its first day is reported (a level shift alerts once, not every day
  until the baseline has caught up). Episodes are found by scanning ``lookback`` days before
  the first requested day, so an hourly run over the last week gives the same answer as one
  run over the whole period.

Every reported ``Score`` carries expected vs actual, the scale, z and ``reason`` (why it fired).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from statistics import median

HISTORY_DAYS = 56
LEVEL_DAYS = 28
MIN_HISTORY = 28
FALLBACK_MIN_HISTORY = 7
MIN_BILLED_DAYS = 7
TAIL_QUANTILE = 0.9
TAIL_Z = 1.2816  # standard normal quantile at 0.9: makes the tail spread comparable to σ
TAIL_RATIO = 2.0  # the tail sets the scale only when it is this many times the MAD scale
MAD_TO_SIGMA = 1.4826
EPISODE_GAP = 3
SUSTAIN_Z = 2.0
SUSTAIN_DAYS = 3
LOOKBACK_DAYS = 14
DEFAULT_SENSITIVITY = 4.0
DEFAULT_MIN_RELATIVE = 0.2
ONE_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Score:
    day: dt.date
    actual: float
    expected: float
    scale: float
    z: float
    baseline: str = "seasonal"  # "seasonal" (weekday-aware) or "trailing" (short history)
    scale_kind: str = "mad"  # which term set the scale: "mad", "tail" or "floor"
    rule: str = "spike"  # "spike" (z ≥ sensitivity) or "sustained" (run days ≥ sustain_z)
    run: int = 1

    @property
    def impact(self) -> float:
        return self.actual - self.expected

    @property
    def reason(self) -> str:
        """Why the day scored as it did, in words (expected vs actual and the band)."""
        band = {
            "mad": "usual day-to-day spread",
            "tail": "spread of its busiest days",
            "floor": "5% of the expected cost",
        }[self.scale_kind]
        why = (
            f"{_money(self.actual)} against an expected {_money(self.expected)} "
            f"({self.baseline} baseline): +{_money(self.impact)}, "
            f"{self.z:.1f}× the {band} ({_money(self.scale)})"
        )
        if self.rule == "sustained":
            why += f"; {self.run} days in a row at ≥ {SUSTAIN_Z:g}× (a sustained rise)"
        return why


def _at_least(x: float, bound: float) -> bool:
    """``x >= bound`` up to float rounding: an increase of exactly the minimum impact
    (``(E + m) - E`` may come out a few ulps below ``m``) qualifies."""
    return x >= bound - 1e-9 * max(abs(x), abs(bound))


def _money(x: float) -> str:
    return f"{x:,.2f}" if abs(x) >= 1 else f"{x:.3g}"


def _quantile(sorted_values: list[float], q: float) -> float:
    pos = q * (len(sorted_values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def score_day(
    series: dict[dt.date, float],
    day: dt.date,
    *,
    scale_floor: float = 0.05,
    first: dt.date | None = None,
) -> Score | None:
    """Score one day against its history; ``None`` while the series is warming up."""
    if not series:
        return None
    first = first or min(series)
    n = min(HISTORY_DAYS, (day - first).days)
    if n < FALLBACK_MIN_HISTORY:
        return None
    history = [
        (day - dt.timedelta(days=k), series.get(day - dt.timedelta(days=k), 0.0))
        for k in range(n, 0, -1)
    ]
    if sum(1 for _, v in history if v) < MIN_BILLED_DAYS:
        return None
    actual = series.get(day, 0.0)
    recent = history[-LEVEL_DAYS:]
    if n >= MIN_HISTORY:
        overall = median(v for _, v in history)
        factors = {}
        for w in range(7):
            vals = [v for d, v in history if d.weekday() == w]
            f = (median(vals) / overall) if (len(vals) >= 3 and overall > 0) else 1.0
            factors[w] = f if f > 0 else 1.0
        level = median(v / factors[d.weekday()] for d, v in recent)
        expected = level * factors[day.weekday()]
        residuals = [v - level * factors[d.weekday()] for d, v in recent]
        baseline = "seasonal"
    else:
        expected = median(v for _, v in recent)
        residuals = [v - expected for _, v in recent]
        baseline = "trailing"
    centre = median(residuals)
    mad = MAD_TO_SIGMA * median(abs(r - centre) for r in residuals)
    tail = (_quantile(sorted(residuals), TAIL_QUANTILE) - centre) / TAIL_Z
    terms = {
        "mad": mad,
        "tail": tail if tail > TAIL_RATIO * mad else 0.0,  # only a clearly heavy upper tail
        "floor": scale_floor * abs(expected),
    }
    scale_kind = max(terms, key=terms.get)
    scale = max(terms[scale_kind], 1e-9)
    return Score(day, actual, expected, scale, (actual - expected) / scale, baseline, scale_kind)


def detect(
    series: dict[dt.date, float],
    days: list[dt.date],
    *,
    sensitivity: float = DEFAULT_SENSITIVITY,
    min_impact: float = 10.0,
    min_relative: float = DEFAULT_MIN_RELATIVE,
    scale_floor: float = 0.05,
    episode_gap: int = EPISODE_GAP,
    sustain_z: float = SUSTAIN_Z,
    sustain_days: int = SUSTAIN_DAYS,
    lookback: int = LOOKBACK_DAYS,
) -> list[Score]:
    """The first day of each anomalous episode that falls on one of ``days``."""
    if not series or not days:
        return []
    first = min(series)
    wanted = set(days)
    day, last = min(days) - dt.timedelta(days=lookback), max(days)
    last_raw: dt.date | None = None
    run = 0  # consecutive days above sustain_z
    out = []
    while day <= last:
        s = score_day(series, day, scale_floor=scale_floor, first=first)
        material = (
            s is not None
            and _at_least(s.impact, min_impact)
            and _at_least(s.actual, (1 + min_relative) * s.expected)
        )
        run = run + 1 if material and s.z >= sustain_z else 0
        if material and (s.z >= sensitivity or (sustain_days and run >= sustain_days)):
            continuing = last_raw is not None and (day - last_raw).days <= episode_gap
            last_raw = day
            if not continuing and day in wanted:
                out.append(s if s.z >= sensitivity else replace(s, rule="sustained", run=run))
        day += ONE_DAY
    return out
