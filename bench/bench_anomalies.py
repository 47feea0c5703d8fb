"""Anomaly detection precision/recall on injected anomalies (costs.analytics.anomalies).

Run: ``.venv/bin/python bench/bench_anomalies.py`` → ``bench/results/anomalies.json``.
Every figure is given per seed and as mean ± standard deviation over ``SEEDS``.

Data sets
* ``real_focus10_30d`` / ``real_aws_cur_13d``: the real samples' daily series as they are
  (``_series.real_series``): per provider × service, account, resource and the total, kept
  when billed on more than half of the days (median > 0). FOCUS 1.0 sample: 30 days; AWS
  legacy CUR sample: 13 days (its 14th day is cut: the export stops three hours into it).
* ``focus_bootstrap_140d``: ``_series.focus_series``: the FOCUS services with at least 20
  charge days, extended to 140 days by drawing real days of the same weekday (real values
  and weekday shape, long enough for the seasonal baseline; stationary by construction).
* ``demo_generator_140d``: ``_series.demo_series`` (synthetic, like the demo costs, ``demo.steps.costs``).

Injection
* Real 30/13-day series: each trial injects ONE event per series at a uniformly random day
  after the first 7 (the detector's minimum history): a spike (1–2 days) or a level shift (to
  the end), 50/50. Long series: events from day 60 on, every 12–20 days after a spike and
  30–40 days after a shift. Sizes: ``relative`` (spike +100–300 %, shift +50–150 % of the
  clean series' median), ``mad_3_6`` / ``mad_6_10`` (k × S0, k uniform in [3, 6) / [6, 10],
  S0 = the clean series' max(1.4826·MAD, 5 % of median)); never below the minimum impact.
* Minimum impact: 50 % of the series median per day (the samples cost cents a day; the
  production setting is absolute currency). Sensitivity: ``COST_ANOMALY_SENSITIVITY``.

Scoring
* An event is found when a flag falls in [start, start + 3 days].
* strict precision = flags in an event's window / (those + false flags), where a false flag
  is any flag outside every window, except flags after a level shift's window (the cost
  really is higher there; long series: up to 21 days after the shift), which count as
  neither. This is the precision the target (≥ 0.9) refers to.
* The real series are unlabelled and may hold genuine anomalies. ``precision_excl_clean``
  also leaves out flags on days the detector flags on the same series without injection.
  That exclusion uses the detector's own judgement, so read it together with
  ``clean_flag_rate`` (flags per scored day on the clean series): it is only meaningful
  when that rate is small.
* ``visible_share``: events whose injected peak exceeds every earlier clean day of the
  series (its range so far); ``recall_visible`` is the recall on those. An event inside the
  range of ordinary days cannot be told from them without flagging those days too.
* ``warmup_share``: events starting on a day the detector does not score by design (the
  series has fewer than 7 days or fewer than 7 billed days of history: a new or sparse series).
* ``chance_recall``: the recall the clean-series flags alone would score (share of
  [start, start + 3] windows holding one) — a detector that flags often "finds" events
  by chance.

Ceilings (what no detector of this design could beat on the data, found without it)
* ``recall_ceiling_warmup`` = 1 − ``warmup_share``: the recall of a detector that finds
  every event it scores; ``recall_scored`` is the recall on those scored events.
* ``precision_ceiling_new_highs``: the strict precision of a detector that finds every
  event and flags nothing else but the clean series' *new highs* — days that at least
  double every earlier day of the series (and by the minimum impact). Such days are
  jumps by any standard, so a detector that stays silent on them is not a better one;
  where they are as many as the injected events, strict precision cannot reach 0.9.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import sys
import time
from pathlib import Path
from statistics import mean, median, pstdev

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
import django  # noqa: E402

django.setup()

from _common import write_results  # noqa: E402
from _series import demo_series, focus_series, real_series  # noqa: E402
from django.conf import settings  # noqa: E402

from costs.analytics import anomalies  # noqa: E402

LONG_DAYS = 140
TRIALS = int(os.environ.get("BENCH_TRIALS", "100"))
SEEDS = (21, 22, 23, 24, 25)
SIZES = {"relative": None, "mad_3_6": (3.0, 6.0), "mad_6_10": (6.0, 10.0)}
WINDOW = dt.timedelta(days=3)
SHIFT_GRACE = dt.timedelta(days=21)
WARMUP = anomalies.FALLBACK_MIN_HISTORY


def _robust_scale(values: list[float]) -> float:
    m = median(values)
    return max(1.4826 * median(abs(v - m) for v in values), 0.05 * abs(m), 1e-9)


def _extra(rng: random.Random, size: str, kind: str, base: float, s0: float) -> float:
    if SIZES[size] is None:
        return base * (rng.uniform(1.0, 3.0) if kind == "spike" else rng.uniform(0.5, 1.5))
    return s0 * rng.uniform(*SIZES[size])


def _real(source: str) -> dict[str, dict[dt.date, float]]:
    out = {}
    for name, s in sorted(real_series(source).items()):
        if source == "cur":  # the CUR export ends three hours into its last day
            s = {d: v for d, v in s.items() if d < max(s)}
        if median(s.values()) > 0:
            out[name] = s
    return out


class Tally:
    def __init__(self) -> None:
        self.events = self.found = self.visible = self.found_visible = 0
        self.true_flags = self.false_flags = self.false_on_clean = self.chance = 0
        self.clean_flags = self.clean_scored_days = self.in_warmup = 0
        self.found_scored = self.new_highs_outside = 0

    def figures(self) -> dict:
        flags = self.true_flags + self.false_flags
        return {
            "events": self.events,
            "found": self.found,
            "recall": _ratio(self.found, self.events),
            "recall_scored": _ratio(self.found_scored, self.events - self.in_warmup),
            "recall_ceiling_warmup": _ratio(self.events - self.in_warmup, self.events),
            "precision_strict": _ratio(self.true_flags, flags),
            "precision_excl_clean": _ratio(self.true_flags, flags - self.false_on_clean),
            "precision_ceiling_new_highs": _ratio(
                self.events, self.events + self.new_highs_outside
            ),
            "flags": flags,
            "false_flags": self.false_flags,
            "clean_flag_rate": _ratio(self.clean_flags, self.clean_scored_days),
            "warmup_share": _ratio(self.in_warmup, self.events),
            "visible_share": _ratio(self.visible, self.events),
            "recall_visible": _ratio(self.found_visible, self.visible),
            "chance_recall": _ratio(self.chance, self.events),
        }


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 3) if b else None


def new_highs(clean: dict, scored_from: int, min_impact: float) -> set:
    """Days of the clean series that at least double its every earlier day (and by at
    least the minimum impact): a jump by any standard, found without the detector."""
    days = sorted(clean)
    out = set()
    for i in range(max(scored_from, 1), len(days)):
        before = [clean[d] for d in days[:i]]
        x = clean[days[i]]
        if x >= 2 * max(before) and x - median(before) >= min_impact:
            out.add(days[i])
    return out


def _outside(d, events) -> bool:
    """Neither in an event's window nor in the grace after a level shift."""
    return not any(
        start <= d <= start + (SHIFT_GRACE if k == "shift" else WINDOW) for start, k, _h in events
    )


def _score(
    tally: Tally, events: list, flagged: list, clean_days: set, clean, s, highs: set
) -> None:
    """events: (start, kind, days hit); clean: the series before injection; s: after;
    highs: ``new_highs`` of the clean series."""
    tally.new_highs_outside += sum(1 for d in highs if _outside(d, events))
    for start, _kind, hit in events:
        hi = start + WINDOW
        found = any(start <= d <= hi for d in flagged)
        before = [v for d, v in clean.items() if d < start]
        visible = max(s[d] for d in hit) > max(before)
        tally.events += 1
        tally.found += found
        tally.visible += visible
        tally.found_visible += found and visible
        tally.chance += any(start <= d <= hi for d in clean_days)
        warm = anomalies.score_day(clean, start) is None
        tally.in_warmup += warm
        tally.found_scored += found and not warm
    for d in flagged:
        if any(start <= d <= start + WINDOW for start, _k, _h in events):
            tally.true_flags += 1
        elif not _outside(d, events):
            continue  # after a level shift's window: the cost really is higher
        else:
            tally.false_flags += 1
            tally.false_on_clean += d in clean_days


def evaluate_real(series: dict, size: str, seed: int, detect) -> dict:
    sens = settings.COST_ANOMALY_SENSITIVITY
    rng = random.Random(seed)
    tally = Tally()
    for _name, clean in series.items():
        days = sorted(clean)
        base = median(clean.values())
        min_impact = 0.5 * base
        clean_days = {
            x.day for x in detect(clean, days[WARMUP:], sensitivity=sens, min_impact=min_impact)
        }
        s0 = _robust_scale(list(clean.values()))
        highs = new_highs(clean, WARMUP, min_impact)
        for _ in range(TRIALS):
            tally.clean_flags += len(clean_days)
            tally.clean_scored_days += len(days) - WARMUP
            s = dict(clean)
            pos = rng.randrange(WARMUP, len(days))
            kind = "spike" if rng.random() < 0.5 else "shift"
            extra = max(_extra(rng, size, kind, base, s0), min_impact)
            hit = days[pos : pos + rng.choice([1, 2])] if kind == "spike" else days[pos:]
            for d in hit:
                s[d] += extra
            flagged = [
                x.day for x in detect(s, days[WARMUP:], sensitivity=sens, min_impact=min_impact)
            ]
            _score(tally, [(days[pos], kind, hit)], flagged, clean_days, clean, s, highs)
    return tally.figures()


def evaluate_long(all_series: list, size: str, seed: int, detect) -> dict:
    sens = settings.COST_ANOMALY_SENSITIVITY
    rng = random.Random(seed)
    tally = Tally()
    for clean in all_series:
        days = sorted(clean)
        base = median(clean.values())
        min_impact = max(0.5 * base, 1e-9)
        s0 = _robust_scale(list(clean.values()))
        scored = days[56:]
        clean_days = {x.day for x in detect(clean, scored, sensitivity=sens, min_impact=min_impact)}
        tally.clean_flags += len(clean_days)
        tally.clean_scored_days += len(scored)
        s = dict(clean)
        events = []
        pos = 60
        while pos < len(days) - 8:
            kind = "spike" if rng.random() < 0.5 else "shift"
            extra = max(_extra(rng, size, kind, base, s0), min_impact)
            hit = days[pos : pos + rng.choice([1, 2])] if kind == "spike" else days[pos:]
            for d in hit:
                s[d] += extra
            events.append((days[pos], kind, hit))
            if kind == "shift":
                base += extra  # later events are sized to the new level
            pos += rng.randint(12, 20) if kind == "spike" else rng.randint(30, 40)
        flagged = [x.day for x in detect(s, scored, sensitivity=sens, min_impact=min_impact)]
        highs = new_highs(clean, 56, min_impact)
        _score(tally, events, flagged, clean_days, clean, s, highs)
    return tally.figures()


def clean_flags(series: dict, detect) -> list[str]:
    """What the detector flags on the unmodified real series, for a human to judge."""
    out = []
    for name, clean in series.items():
        days = sorted(clean)
        for x in detect(
            clean,
            days[WARMUP:],
            sensitivity=settings.COST_ANOMALY_SENSITIVITY,
            min_impact=0.5 * median(clean.values()),
        ):
            before = [clean[d] for d in days if d < x.day]
            why = getattr(x, "reason", f"z={x.z:.1f}")
            out.append(f"{name} {x.day}: {why}; previous max {max(before):.3g}")
    return out


def summarise(per_seed: dict[int, dict]) -> dict:
    out: dict = {}
    keys = next(iter(per_seed.values())).keys()
    for key in keys:
        values = [r[key] for r in per_seed.values() if r[key] is not None]
        if not values:
            out[key] = None
        elif key in ("events", "found", "flags", "false_flags"):
            out[key] = sum(values)
        else:
            out[key] = {
                "mean": round(mean(values), 3),
                "sd": round(pstdev(values), 3),
                "min": min(values),
                "max": max(values),
            }
    return out


def run(detect=anomalies.detect) -> dict:
    datasets = {
        "real_focus10_30d": ("real", _real("focus")),
        "real_aws_cur_13d": ("real", _real("cur")),
        "focus_bootstrap_140d": ("long", None),
        "demo_generator_140d": ("long", None),
    }
    results: dict = {}
    for name, (kind, series) in datasets.items():
        results[name] = {}
        for size in SIZES:
            if name == "demo_generator_140d" and size != "relative":
                continue
            per_seed = {}
            for seed in SEEDS:
                if kind == "real":
                    per_seed[seed] = evaluate_real(series, size, seed, detect)
                elif name == "focus_bootstrap_140d":
                    per_seed[seed] = evaluate_long(
                        focus_series(LONG_DAYS, seed), size, seed, detect
                    )
                else:
                    per_seed[seed] = evaluate_long(
                        demo_series(80, LONG_DAYS, seed=seed), size, seed + 1000, detect
                    )
            results[name][size] = {"summary": summarise(per_seed), "per_seed": per_seed}
        if kind == "real":
            results[name]["series"] = len(series)
            results[name]["days_per_series"] = len(next(iter(series.values())))
            results[name]["clean_series_flags"] = clean_flags(series, detect)
    return results


def main() -> None:
    t = time.perf_counter()
    results = run()
    write_results(
        "anomalies",
        {
            "command": ".venv/bin/python bench/bench_anomalies.py",
            "sensitivity": settings.COST_ANOMALY_SENSITIVITY,
            "min_relative": anomalies.DEFAULT_MIN_RELATIVE,
            "min_impact": "50% of the series median per day",
            "min_history_days": {
                "seasonal": anomalies.MIN_HISTORY,
                "trailing": anomalies.FALLBACK_MIN_HISTORY,
                "billed_days": anomalies.MIN_BILLED_DAYS,
            },
            "episode_gap_days": anomalies.EPISODE_GAP,
            "trials_per_series_real": TRIALS,
            "seeds": list(SEEDS),
            **results,
            "azure_ea_samples": "not evaluated: 1-9 distinct days per file (no daily series)",
            "target": {"precision_strict": 0.9, "recall": 0.8},
            "seconds": round(time.perf_counter() - t, 2),
        },
    )


if __name__ == "__main__":
    main()
