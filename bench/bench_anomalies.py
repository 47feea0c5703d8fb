"""Anomaly detection precision/recall on injected anomalies (costs.analytics.anomalies).

Into each real-shaped series (the FOCUS sample's services, bootstrapped; the demo
generator's team × service series) inject, at random days after the first 8 weeks, spikes
(+100% to +300% of the series' median for 1-2 days) and level shifts (+50% to +150% from a
day on). An injected event is found when a flagged day falls in [start, start + 3 days]
(the event's window); a flagged day outside every window is a false positive. Writes
bench/results/anomalies.json. Sensitivity and minimum impact are the production defaults.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import sys
import time
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
import django  # noqa: E402

django.setup()

from _common import write_results  # noqa: E402
from _series import demo_series, focus_series  # noqa: E402
from django.conf import settings  # noqa: E402

from costs.analytics.anomalies import detect  # noqa: E402

DAYS = 140


def evaluate(all_series, seed: int) -> dict:
    rng = random.Random(seed)
    tp = fn = fp = flagged_total = 0
    sens = settings.COST_ANOMALY_SENSITIVITY
    for s in all_series:
        days = sorted(s)
        base = median(s.values())
        min_impact = max(1.0, 0.5 * base)  # scaled to the series (the real setting is absolute)
        s = dict(s)
        events = []
        pos = 60
        while pos < DAYS - 8:
            start = days[pos]
            if rng.random() < 0.5:
                length = rng.choice([1, 2])
                extra = base * rng.uniform(1.0, 3.0)
                for k in range(length):
                    s[start + dt.timedelta(days=k)] += extra
                events.append((start, start + dt.timedelta(days=3), "spike"))
                pos += rng.randint(12, 20)
            else:
                extra = base * rng.uniform(0.5, 1.5)
                for d in days[pos:]:
                    s[d] += extra
                events.append((start, start + dt.timedelta(days=3), "shift"))
                base += extra
                pos += rng.randint(30, 40)
        flagged = [x.day for x in detect(s, days[56:], sensitivity=sens, min_impact=min_impact)]
        flagged_total += len(flagged)
        for lo, hi, _ in events:
            if any(lo <= d <= hi for d in flagged):
                tp += 1
            else:
                fn += 1
        for d in flagged:
            inside = any(lo <= d <= hi for lo, hi, _ in events)
            # after a shift the baseline needs time to adapt: flags within 3 weeks of a shift
            # are the same event, not a false alarm
            after_shift = any(
                kind == "shift" and hi < d <= lo + dt.timedelta(days=21) for lo, hi, kind in events
            )
            if not inside and not after_shift:
                fp += 1
    precision = (flagged_total - fp) / flagged_total if flagged_total else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {
        "series": len(all_series),
        "events": tp + fn,
        "found": tp,
        "flagged_days": flagged_total,
        "false_positive_days": fp,
        "precision": round(precision, 3),
        "recall": round(recall, 3),
    }


def main() -> None:
    t = time.perf_counter()
    focus = evaluate(focus_series(DAYS, seed=11), seed=11)
    demo = evaluate(demo_series(80, DAYS, seed=11), seed=12)
    write_results(
        "anomalies",
        {
            "sensitivity": settings.COST_ANOMALY_SENSITIVITY,
            "min_impact": "50% of the series median per day",
            "focus_sample_bootstrap": focus,
            "demo_generator": demo,
            "target": {"precision": 0.9, "recall": 0.8},
            "seconds": round(time.perf_counter() - t, 2),
        },
    )


if __name__ == "__main__":
    main()
