"""Daily cost series for the forecast and anomaly benchmarks (no database needed).

* ``demo``: team × service series drawn exactly like the demo's costs (``demo.steps.costs``) (the FOCUS-sample
  catalogue's price ranges, uniform daily noise per resource, weekend dip, monthly growth).
* ``focus``: the real FOCUS 1.0 sample (September 2024, FinOps Foundation, CC BY 4.0): the
  daily billed cost of each service with at least 20 charge days, extended to 20 weeks by
  resampling real days of the same weekday (a block bootstrap that keeps the real level,
  noise and weekday shape of each service).
* ``real_series``: the real samples' daily series as they are (FOCUS 30 days, AWS legacy
  CUR 14 days), per provider × service, account, resource and the total.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT.parent / "shared" / "data" / "costs" / "focus10_sample_multicloud_1000.csv"
START = dt.date(2025, 1, 6)


def demo_series(n: int, days: int, seed: int) -> list[dict[dt.date, float]]:
    from demo.tables import cloud_catalog

    catalog = cloud_catalog()[""]
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        resources = [(rng.choice(catalog), rng.uniform(0.6, 1.6)) for _ in range(rng.randint(2, 6))]
        s = {}
        for i in range(days):
            d = START + dt.timedelta(days=i)
            growth = 1 + 0.03 * (i / 30)
            weekday = 0.8 if d.weekday() >= 5 else 1.0
            s[d] = sum(rng.uniform(e[5], e[6]) * k * growth * weekday for e, k in resources)
        out.append(s)
    return out


def focus_series(days: int, seed: int) -> list[dict[dt.date, float]]:
    per: dict[str, dict[dt.date, float]] = defaultdict(lambda: defaultdict(float))
    with open(SAMPLE, newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            day = dt.date.fromisoformat(r["ChargePeriodStart"][:10])
            per[r["ServiceName"]][day] += float(r["BilledCost"] or 0)
    rng = random.Random(seed)
    out = []
    for _name, series in sorted(per.items()):
        if len(series) < 20 or sum(series.values()) <= 0:
            continue
        by_weekday = defaultdict(list)
        for d, v in series.items():
            by_weekday[d.weekday()].append(v)
        s = {}
        for i in range(days):
            d = START + dt.timedelta(days=i)
            s[d] = rng.choice(by_weekday[d.weekday()] or list(series.values()))
        out.append(s)
    return out


CUR = SAMPLE.parent / "aws_cur_legacy_sample_anonymized.csv"


def _fill(per: dict, first: dt.date, last: dt.date) -> dict[str, dict[dt.date, float]]:
    n = (last - first).days + 1
    days = [first + dt.timedelta(days=i) for i in range(n)]
    return {name: {d: s.get(d, 0.0) for d in days} for name, s in per.items()}


def real_series(source: str) -> dict[str, dict[dt.date, float]]:
    """Real daily series, unresampled, every day of the file's span (missing days = 0):
    per provider × service, per account, per resource and the total. ``source`` is
    ``focus`` (FOCUS 1.0 sample, BilledCost by ChargePeriodStart, 30 days) or ``cur``
    (AWS legacy CUR sample, lineItem/UnblendedCost by UsageStartDate, 14 days; it has no
    resource id, so the finest grain is product × usage type)."""
    per: dict[str, dict[dt.date, float]] = defaultdict(lambda: defaultdict(float))
    if source == "focus":
        path, day_col, cost_col = SAMPLE, "ChargePeriodStart", "BilledCost"

        def keys(r):
            return [
                f"service:{r['ProviderName']}/{r['ServiceName']}",
                f"account:{r['SubAccountId']}",
                f"resource:{r['ResourceId']}" if r["ResourceId"] not in ("", "NULL") else None,
                "total",
            ]

    elif source == "cur":
        path, day_col, cost_col = CUR, "lineItem/UsageStartDate", "lineItem/UnblendedCost"

        def keys(r):
            return [
                f"service:AWS/{r['lineItem/ProductCode']}",
                f"account:{r['lineItem/UsageAccountId']}",
                f"resource:{r['lineItem/ProductCode']}/{r['lineItem/UsageType']}",
                "total",
            ]

    else:
        raise ValueError(source)
    days = set()
    with open(path, newline="", encoding="utf-8-sig") as fh:
        for r in csv.DictReader(fh):
            day = dt.date.fromisoformat(r[day_col][:10])
            days.add(day)
            cost = float(r[cost_col] or 0) if r[cost_col] not in ("", "NULL") else 0.0
            for k in keys(r):
                if k:
                    per[k][day] += cost
    return _fill(per, min(days), max(days))
