"""Anomaly detector quality (C6): hand-built series where a spike must fire and noise,
seasonality, sparse or new series must not; a level shift alerts once; cents never alert.
Pure functions: no database."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from costs.analytics.anomalies import MIN_BILLED_DAYS, detect, score_day

pytestmark = pytest.mark.sqlite

START = dt.date(2026, 1, 5)  # a Monday


def day(i: int) -> dt.date:
    return START + dt.timedelta(days=i)


def steady(days: int = 90, level: float = 100.0, noise: float = 0.05, seed: int = 1) -> dict:
    rng = random.Random(seed)
    return {day(i): level * rng.uniform(1 - noise, 1 + noise) for i in range(days)}


def scored(s: dict) -> list[dt.date]:
    return sorted(s)[7:]


def test_spike_fires_once_with_expected_actual_and_reason():
    s = steady()
    s[day(60)] += 300
    found = detect(s, scored(s), min_impact=10)
    assert [x.day for x in found] == [day(60)]
    a = found[0]
    assert 95 <= a.expected <= 105 and a.actual == s[day(60)]
    assert a.z >= 4 and a.baseline == "seasonal"
    assert f"{a.actual:,.2f} against an expected {a.expected:,.2f}" in a.reason
    assert "seasonal baseline" in a.reason and f"+{a.impact:,.2f}" in a.reason
    assert f"{a.z:.1f}× the 5% of the expected cost (5.00)" in a.reason


@pytest.mark.parametrize("seed", range(5))
def test_bounded_noise_does_not_fire(seed):
    s = steady(days=120, noise=0.10, seed=seed)
    assert detect(s, scored(s), min_impact=10) == []


def test_gaussian_noise_false_alarm_rate_is_below_one_in_a_thousand_days():
    flags = days = 0
    for seed in range(10):
        rng = random.Random(seed)
        s = {day(i): max(0.0, rng.gauss(1000, 60)) for i in range(120)}
        flags += len(detect(s, scored(s), min_impact=10))
        days += len(scored(s))
    assert days == 1130 and flags <= 1


def test_weekly_seasonality_does_not_fire():
    # weekends at 40 % of weekdays and a Monday batch at 3× a weekday: all ordinary
    rng = random.Random(7)
    s = {}
    for i in range(112):
        d = day(i)
        base = 300.0 if d.weekday() == 0 else 40.0 if d.weekday() >= 5 else 100.0
        s[d] = base * rng.uniform(0.95, 1.05)
    seasonal_days = sorted(s)[21:]
    assert detect(s, seasonal_days, min_impact=10) == []
    # the same Monday-sized cost on a Wednesday is an anomaly
    wednesday = day(93)
    assert wednesday.weekday() == 2
    s[wednesday] = 300.0
    assert [x.day for x in detect(s, seasonal_days, min_impact=10)] == [wednesday]


def test_level_shift_alerts_once_not_every_day():
    s = steady()
    for i in range(60, 90):
        s[day(i)] += 80
    found = detect(s, scored(s), min_impact=10)
    assert [x.day for x in found] == [day(60)]
    # without the episode rule the same shift fires on many days in a row
    raw = detect(s, scored(s), min_impact=10, episode_gap=0)
    assert len(raw) > 1 and raw[0].day == day(60)


def test_moderate_level_shift_fires_once_by_persistence():
    # no single day reaches the sensitivity, three days in a row ≥ 2 scales do
    s = {day(i): 95.0 if i % 2 else 105.0 for i in range(90)}
    for i in range(60, 90):
        s[day(i)] += 22
    found = detect(s, scored(s), min_impact=10, min_relative=0.1)
    assert [(x.day, x.rule, x.run) for x in found] == [(day(62), "sustained", 3)]
    assert all(x.z < 4 for x in detect(s, scored(s), min_impact=10, episode_gap=0))
    assert "3 days in a row" in found[0].reason
    assert detect(s, scored(s), min_impact=10, min_relative=0.1, sustain_days=0) == []


def test_episode_seen_by_a_later_window_is_not_reported_again():
    """The hourly run scores the last 7 days: a shift that began before them is not new."""
    s = steady()
    for i in range(60, 90):
        s[day(i)] += 80
    window = [day(i) for i in range(63, 70)]
    assert detect(s, window, min_impact=10) == []
    assert [x.day for x in detect(s, [day(i) for i in range(58, 65)], min_impact=10)] == [day(60)]


def test_new_series_does_not_alert_before_it_has_history():
    s = {day(i): 100.0 for i in range(6)}
    s[day(5)] = 5000.0
    assert detect(s, sorted(s), min_impact=10) == []
    assert score_day(s, day(5)) is None


def test_sparse_series_does_not_alert():
    # billed on 4 days in 30 (fewer than MIN_BILLED_DAYS), then a big charge: no baseline
    s = {day(i): 0.0 for i in range(30)}
    for i in (2, 9, 16, 23):
        s[day(i)] = 50.0
    s[day(29)] = 900.0
    assert sum(1 for v in s.values() if v) - 1 < MIN_BILLED_DAYS
    assert detect(s, sorted(s), min_impact=10) == []
    assert score_day(s, day(29)) is None


def test_cents_level_noise_does_not_alert():
    rng = random.Random(4)
    s = {day(i): rng.uniform(0.01, 0.05) for i in range(60)}
    s[day(50)] = 0.90  # 20× the usual, but 85 cents
    assert detect(s, scored(s), min_impact=10) == []
    (cents,) = detect(s, scored(s), min_impact=0.5)
    assert cents.day == day(50) and cents.reason.startswith("0.9 against an expected 0.0")


def test_small_relative_change_on_a_large_steady_series_does_not_alert():
    s = steady(level=10_000.0, noise=0.001)
    s[day(70)] *= 1.15  # +1,500: far above the floor-limited band, but +15 %
    assert detect(s, scored(s), min_impact=10, min_relative=0.2) == []
    s[day(70)] = 10_000.0 * 1.3
    found = detect(s, scored(s), min_impact=10, min_relative=0.2)
    assert [x.day for x in found] == [day(70)] and "5% of the expected cost" in found[0].reason


def test_bursty_series_widens_its_band_and_still_catches_a_big_spike():
    # a batch service: every third day costs ~20× the others (heavy upper tail)
    rng = random.Random(11)
    s = {day(i): (40.0 if i % 3 == 0 else 2.0) * rng.uniform(0.9, 1.1) for i in range(90)}
    assert detect(s, scored(s), min_impact=5) == []
    s[day(75)] = 400.0
    found = detect(s, scored(s), min_impact=5)
    assert [x.day for x in found] == [day(75)]
    assert found[0].scale_kind == "tail" and "busiest days" in found[0].reason


def test_drops_do_not_alert_and_ranking_score_grows_with_the_spike():
    s = steady()
    s[day(50)] = 10.0
    assert detect(s, scored(s), min_impact=10) == []
    small, big = dict(s), dict(s)
    small[day(70)] += 60
    big[day(70)] += 600
    (a,) = detect(small, scored(small), min_impact=10)
    (b,) = detect(big, scored(big), min_impact=10)
    assert b.z > a.z and b.impact > a.impact


def test_hourly_runs_store_a_level_shift_once(tmp_path, org):
    """Through the service and the database: runs on consecutive days, each scoring the last
    7 days, store one anomaly for a level shift (its first day), not one per day."""
    from costs.analytics import services
    from costs.analytics.models import Anomaly

    from .analytics_data import line, load_rows, tag_rules

    tag_rules(org["payments"])
    today = dt.date(2026, 3, 20)
    shift_from = today - dt.timedelta(days=8)
    rng = random.Random(3)
    rows = []
    for back in range(70, -1, -1):
        d = today - dt.timedelta(days=back)
        cost = 100 * rng.uniform(0.97, 1.03) + (150 if d >= shift_from else 0)
        rows.append(line(d, "payments", round(cost, 4), resource="i-db"))
    load_rows(tmp_path, rows)
    stored = []
    for run_day in (shift_from + dt.timedelta(days=k) for k in range(0, 9)):
        stored += services.anomalies_detect(today=run_day)
    assert [(a.day, a.service_name) for a in stored] == [
        (shift_from, "Amazon Elastic Compute Cloud")
    ]
    assert Anomaly.objects.count() == 1
    a = Anomaly.objects.get()
    assert 140 < float(a.impact) < 160 and a.score >= 4
