"""Back-test of the month-end forecast (costs.analytics.forecast): MAPE per horizon.

For every series and every month with four weeks of history before it, forecast the month's
total at day 1, 7, 14, 21 and 28 (horizon = days left) and compare with the actual total.
Writes bench/results/forecast_backtest.json.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
import django  # noqa: E402

django.setup()

from _common import write_results  # noqa: E402
from _series import demo_series, focus_series  # noqa: E402

from costs.analytics.forecast import forecast_month, month_end  # noqa: E402

CHECKPOINTS = (1, 7, 14, 21, 28)


def backtest(all_series) -> dict:
    errors: dict[int, list[float]] = {c: [] for c in CHECKPOINTS}
    for s in all_series:
        ds = {d: Decimal(str(round(v, 6))) for d, v in s.items()}
        first, last = min(ds), max(ds)
        month = (first + dt.timedelta(days=35)).replace(day=1)
        while month_end(month) <= last:
            actual = sum((v for d, v in ds.items() if month <= d <= month_end(month)), Decimal(0))
            for c in CHECKPOINTS:
                f = forecast_month(ds, month, month + dt.timedelta(days=c - 1))
                if actual > 0:
                    errors[c].append(abs(float(f - actual) / float(actual)))
            month = (month + dt.timedelta(days=32)).replace(day=1)
    return {
        f"day_{c}_horizon_{31 - c}d": {"mape_pct": round(100 * sum(e) / len(e), 2), "n": len(e)}
        for c, e in errors.items()
        if e
    }


def main() -> None:
    demo = demo_series(60, 365, seed=7)
    focus = focus_series(140, seed=7)
    write_results(
        "forecast_backtest",
        {
            "method": "MTD actual + per remaining day the median of the same weekday over the trailing 4 weeks",
            "demo_generator": {"series": len(demo), "days": 365, **backtest(demo)},
            "focus_sample_bootstrap": {"series": len(focus), "days": 140, **backtest(focus)},
        },
    )


if __name__ == "__main__":
    main()
