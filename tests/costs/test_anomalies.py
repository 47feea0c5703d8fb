"""Anomalies (C6): weekday-aware median/MAD baseline; stored with drivers; acknowledged."""

from __future__ import annotations

import datetime as dt
import random
from statistics import median

import pytest

from audit.models import AuditEvent
from costs.analytics import services
from costs.analytics.anomalies import detect, score_day
from costs.analytics.models import Anomaly
from portal.core.errors import InvalidTransition, NotPermitted

from .analytics_data import line, load_rows, tag_rules

START = dt.date(2026, 1, 1)


def weekly_series(days=90, seed=1):
    rng = random.Random(seed)
    return {
        START + dt.timedelta(days=i): (
            60.0 if (START + dt.timedelta(days=i)).weekday() >= 5 else 100.0
        )
        * rng.uniform(0.95, 1.05)
        for i in range(days)
    }


def test_weekly_pattern_raises_no_anomaly():
    s = weekly_series()
    assert detect(s, sorted(s)[30:], sensitivity=4, min_impact=10) == []


def test_spike_and_level_shift_are_found_and_drops_are_not():
    s = weekly_series()
    spike = START + dt.timedelta(days=60)
    s[spike] += 80
    shift = START + dt.timedelta(days=75)
    for i in range(75, 90):
        s[START + dt.timedelta(days=i)] += 50
    drop = START + dt.timedelta(days=50)
    s[drop] -= 50
    found = [x.day for x in detect(s, sorted(s)[30:], sensitivity=4, min_impact=10)]
    assert spike in found and shift in found and drop not in found
    assert detect(s, [spike], sensitivity=4, min_impact=1000) == []  # below the minimum impact


def test_an_increase_of_exactly_the_minimum_impact_qualifies():
    """(E + m) - E can come out a few ulps below m in floats; the boundary still counts."""
    base = 7.2e-05  # a real constant series (AWS CUR sample, EFS storage)
    days = [START + dt.timedelta(days=i) for i in range(14)]
    s = dict.fromkeys(days, base)
    min_impact = 0.5 * base
    s[days[10]] += min_impact
    assert s[days[10]] - base < min_impact  # the float rounding this guards against
    found = detect(s, days[7:], sensitivity=4, min_impact=min_impact)
    assert [x.day for x in found] == [days[10]]
    assert detect(s, days[7:], sensitivity=4, min_impact=min_impact * 1.01) == []


@pytest.fixture
def spiky(tmp_path, org):
    tag_rules(org["payments"])
    today = dt.date(2026, 3, 20)
    rng = random.Random(5)
    rows = []
    for back in range(70, -1, -1):
        d = today - dt.timedelta(days=back)
        rows.append(
            line(d, "payments", round(100 * rng.uniform(0.97, 1.03), 4), resource="i-steady")
        )
        rows.append(
            line(d, "payments", 400 if back == 2 else 10, resource="i-runaway", SkuId="BIG")
        )
    load_rows(tmp_path, rows)
    return today


def test_detect_stores_anomaly_with_drivers_once(spiky, org):
    found = services.anomalies_detect(today=spiky)
    assert len(found) == 1
    a = found[0]
    assert (a.team, a.service_name, a.day) == (
        org["payments"],
        "Amazon Elastic Compute Cloud",
        spiky - dt.timedelta(days=2),
    )
    assert (
        a.impact > 350
        and a.drivers[0]["resource_id"] == "i-runaway"
        and a.drivers[0]["sku_id"] == "BIG"
    )
    assert "expected" in a.reason and a.reason == a.reason.strip()  # why it fired, stored
    assert services.anomalies_detect(today=spiky) == []
    assert Anomaly.objects.count() == 1


def test_acknowledge_by_lead_not_by_member(spiky, manager, requester, client):
    a = services.anomalies_detect(today=spiky)[0]
    before = AuditEvent.objects.count()
    with pytest.raises(NotPermitted):
        services.anomaly_acknowledge(actor=requester, anomaly_id=a.pk)
    a.refresh_from_db()
    assert a.status == "open" and AuditEvent.objects.count() == before
    client.force_login(manager)
    r = client.post(f"/costs/anomalies/{a.pk}/acknowledge/", {"note": "batch re-run"})
    assert r.status_code == 302
    a.refresh_from_db()
    assert (a.status, a.acknowledged_by, a.note) == ("acknowledged", manager, "batch re-run")
    assert AuditEvent.objects.filter(action="costs.anomaly_acknowledged").count() == 1
    with pytest.raises(InvalidTransition):
        services.anomaly_acknowledge(actor=manager, anomaly_id=a.pk)


def test_anomaly_pages_are_scoped(spiky, other_team_user, requester, client):
    a = services.anomalies_detect(today=spiky)[0]
    client.force_login(other_team_user)
    assert client.post(f"/costs/anomalies/{a.pk}/acknowledge/").status_code == 404
    assert list(client.get("/costs/anomalies/").context["anomalies"]) == []
    client.force_login(requester)
    page = client.get("/costs/anomalies/")
    assert [x.pk for x in page.context["anomalies"]] == [a.pk]
    assert a.reason and a.reason in page.content.decode()
    assert client.get("/costs/anomalies/acknowledge/").status_code == 404


@pytest.mark.sqlite
def test_short_series_falls_back_to_trailing_median_and_mad():
    rng = random.Random(3)
    s = {START + dt.timedelta(days=i): 100.0 * rng.uniform(0.95, 1.05) for i in range(14)}
    days = sorted(s)
    assert detect(s, days[7:], sensitivity=4, min_impact=10) == []  # steady: nothing flagged
    spike = days[10]
    s[spike] += 80
    found = detect(s, days[7:], sensitivity=4, min_impact=10)
    assert [x.day for x in found] == [spike]
    assert found[0].baseline == "trailing"
    assert abs(found[0].expected - median(s[d] for d in days[:10])) < 1e-9
    assert detect(s, [spike], sensitivity=4, min_impact=1000) == []  # below the minimum impact


@pytest.mark.sqlite
def test_fewer_than_seven_days_is_not_scored_and_long_history_is_seasonal():
    s = {START + dt.timedelta(days=i): 100.0 for i in range(6)}
    s[START + dt.timedelta(days=6)] = 1000.0
    assert score_day(s, START + dt.timedelta(days=6)) is None
    assert detect(s, sorted(s), sensitivity=4, min_impact=10) == []
    long = weekly_series(days=40)
    assert score_day(long, START + dt.timedelta(days=35)).baseline == "seasonal"
    assert score_day(long, START + dt.timedelta(days=10)).baseline == "trailing"
