"""Month-end forecast: pure functions over a daily series (documented in docs/COST_ANALYTICS.md).

Method (weekday-aware robust run rate): for every remaining day of the month, predict the
median of the same weekday over the trailing four weeks of actual data; the forecast is the
month-to-date actual plus those predictions. When fewer than 14 days of history exist, the
median of all available days stands in for every weekday. Back-tested by
``bench/bench_forecast.py`` (MAPE per horizon in ``bench/results/forecast_backtest.json``).
"""

from __future__ import annotations

import calendar
import datetime as dt
from decimal import Decimal
from statistics import median

WEEKS = 4


def month_end(month: dt.date) -> dt.date:
    return month.replace(day=calendar.monthrange(month.year, month.month)[1])


def day_predictor(series: dict[dt.date, Decimal], as_of: dt.date):
    """A function weekday -> predicted daily cost, from the ``WEEKS`` weeks up to ``as_of``."""
    start = as_of - dt.timedelta(days=7 * WEEKS - 1)
    window = [
        (d, series.get(d, Decimal(0)))
        for d in _days(start, as_of)
        if d >= min(series, default=as_of)
    ]
    values = [v for _, v in window]
    if not values:
        return lambda weekday: Decimal(0)
    overall = _median(values)
    if len(values) < 14:
        return lambda weekday: overall
    by_weekday: dict[int, list[Decimal]] = {}
    for d, v in window:
        by_weekday.setdefault(d.weekday(), []).append(v)
    medians = {w: _median(vs) for w, vs in by_weekday.items()}
    return lambda weekday: medians.get(weekday, overall)


def forecast_month(series: dict[dt.date, Decimal], month: dt.date, as_of: dt.date) -> Decimal:
    """Forecast of the whole month's cost, knowing actual daily costs up to ``as_of``."""
    first, last = month.replace(day=1), month_end(month)
    if as_of >= last:
        return sum((series.get(d, Decimal(0)) for d in _days(first, last)), Decimal(0))
    actual = sum((series.get(d, Decimal(0)) for d in _days(first, as_of)), Decimal(0))
    if as_of < first:
        as_of_for_model = first - dt.timedelta(days=1)
        remaining_from = first
    else:
        as_of_for_model = as_of
        remaining_from = as_of + dt.timedelta(days=1)
    predict = day_predictor(series, as_of_for_model)
    rest = sum((predict(d.weekday()) for d in _days(remaining_from, last)), Decimal(0))
    return actual + rest


def _days(start: dt.date, end: dt.date):
    d = start
    while d <= end:
        yield d
        d += dt.timedelta(days=1)


def _median(values: list[Decimal]) -> Decimal:
    m = median(values)
    return m if isinstance(m, Decimal) else Decimal(str(m))
