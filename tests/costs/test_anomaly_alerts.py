"""Anomaly alerts people subscribe to (frozen clock), and what people decide about an
anomaly: acknowledge, dismiss as expected (the detector then skips that pattern for that
series), snooze (no alert meanwhile, reopened afterwards)."""

from __future__ import annotations

import datetime as dt
import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core import mail
from django.utils import timezone

from audit.models import AuditEvent
from costs.analytics import alerts, services
from costs.analytics.models import Anomaly, AnomalyDelivery, AnomalySubscription
from portal.core.errors import InvalidTransition, NotPermitted, ValidationError

from .analytics_data import line, load_rows, tag_rules

pytestmark = pytest.mark.django_db


@pytest.fixture
def spiky(tmp_path, org):
    """payments' EC2 costs with one spike two days before "today" (returned)."""
    tag_rules(org["payments"])
    today = dt.date(2026, 3, 20)
    rows = []
    for back in range(70, -1, -1):
        d = today - dt.timedelta(days=back)
        rows.append(line(d, "payments", 100 + (back % 3), resource="i-steady"))
        rows.append(line(d, "payments", 400 if back == 2 else 10, resource="i-runaway"))
    load_rows(tmp_path, rows)
    return today


@pytest.fixture
def chat_server():
    """A local HTTP server standing in for the chat's incoming-webhook endpoint."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


def test_subscriptions_by_cadence_with_a_frozen_clock(
    spiky, org, manager, finance, requester, chat_server, clock, django_capture_on_commit_callbacks
):
    url, received = chat_server
    lead_sub = alerts.subscription_create(
        actor=manager,
        scope="team",
        team_slug="payments",
        cadence="immediate",
        channel="email",
        min_impact="100",
    )
    org_sub = alerts.subscription_create(
        actor=finance,
        scope="org",
        cadence="daily",
        channel="chat",
        chat_webhook_url="https://chat.example/hooks/abc",
    )
    AnomalySubscription.objects.filter(pk=org_sub.pk).update(chat_webhook_url=url)
    alerts.subscription_create(
        actor=requester,
        scope="service",
        service_name="amazon elastic compute cloud",
        cadence="weekly",
        channel="email",
        min_impact="10000",
    )
    assert AuditEvent.objects.filter(action="costs.anomaly_subscribed").count() == 3
    [anomaly] = services.anomalies_detect(today=spiky)
    start = timezone.now()

    with django_capture_on_commit_callbacks(execute=True):
        counts = alerts.anomaly_alerts_run(now=start)
    assert counts == {"woke": 0, "deliveries": 2}  # the lead's and finance's; not the 10,000 floor
    assert [m.to for m in mail.outbox] == [["manager@example.com"]]
    assert mail.outbox[0].subject.startswith("[Tollgate] Cost anomaly: Payments Amazon Elastic")
    assert len(received) == 1 and "Daily cost anomalies for the org: 1" in received[0]["text"]
    assert AnomalyDelivery.objects.filter(sent_at__isnull=True).count() == 0

    # nothing twice
    with django_capture_on_commit_callbacks(execute=True):
        assert alerts.anomaly_alerts_run(now=start)["deliveries"] == 0
    assert len(mail.outbox) == 1 and len(received) == 1

    # a new anomaly two hours later: the immediate one hears at once, the daily digest waits
    clock.move_to(start + dt.timedelta(hours=2))
    second = Anomaly.objects.create(
        team=org["payments"],
        service_name="Amazon S3",
        day=spiky,
        expected=Decimal(10),
        actual=Decimal(500),
        impact=Decimal(490),
        score=9.0,
        reason="test",
    )
    with django_capture_on_commit_callbacks(execute=True):
        alerts.anomaly_alerts_run(now=start + dt.timedelta(hours=3))
    assert len(mail.outbox) == 2 and "Amazon S3" in mail.outbox[1].subject
    assert len(received) == 1
    # a day after the last digest, finance's daily digest carries it
    with django_capture_on_commit_callbacks(execute=True):
        alerts.anomaly_alerts_run(now=start + dt.timedelta(days=1, minutes=1))
    assert len(received) == 2 and "Amazon S3" in received[1]["text"]
    assert set(AnomalyDelivery.objects.values_list("subscription_id", "anomaly_id")) == {
        (lead_sub.pk, anomaly.pk),
        (org_sub.pk, anomaly.pk),
        (lead_sub.pk, second.pk),
        (org_sub.pk, second.pk),
    }


def test_subscribing_is_scoped(org, other_team_user, requester, manager):
    with pytest.raises(ValidationError, match="no such team: 'payments'"):
        alerts.subscription_create(
            actor=other_team_user,
            scope="team",
            team_slug="payments",
            cadence="daily",
            channel="email",
        )
    with pytest.raises(NotPermitted):
        alerts.subscription_create(actor=requester, scope="org", cadence="daily", channel="email")
    with pytest.raises(ValidationError, match="https:// webhook"):
        alerts.subscription_create(
            actor=manager,
            scope="team",
            team_slug="payments",
            cadence="daily",
            channel="chat",
            chat_webhook_url="http://10.0.0.1/x",
        )
    with pytest.raises(ValidationError, match="cadence must be one of"):
        alerts.subscription_create(
            actor=manager, scope="team", team_slug="payments", cadence="hourly", channel="email"
        )
    assert AnomalySubscription.objects.count() == 0
    sub = alerts.subscription_create(
        actor=manager, scope="team", team_slug="payments", cadence="daily", channel="email"
    )
    with pytest.raises(ValidationError, match="no such subscription"):
        alerts.subscription_end(actor=requester, subscription_id=sub.pk)
    alerts.subscription_end(actor=manager, subscription_id=sub.pk)
    assert AnomalySubscription.objects.get(pk=sub.pk).active is False


@pytest.fixture
def weekly_spikes(tmp_path, org):
    """Spikes on the same weekday a week apart (days back 9 and 2 from "today")."""
    tag_rules(org["payments"])
    today = dt.date(2026, 3, 20)
    rows = []
    for back in range(70, -1, -1):
        d = today - dt.timedelta(days=back)
        rows.append(line(d, "payments", 100 + (back % 3), resource="i-steady"))
        rows.append(line(d, "payments", 400 if back in (9, 2) else 10, resource="i-batch"))
    load_rows(tmp_path, rows)
    return today


@pytest.mark.parametrize(
    "pattern, skipped", [("weekday", True), ("level", True), ("monthday", False)]
)
def test_dismissal_teaches_the_detector_to_skip_the_pattern(
    weekly_spikes, manager, pattern, skipped
):
    week_before = weekly_spikes - dt.timedelta(days=7)
    [first] = services.anomalies_detect(today=week_before)
    assert first.day == weekly_spikes - dt.timedelta(days=9)
    alerts.anomaly_dismiss(
        actor=manager, anomaly_id=first.pk, reason="the weekly batch re-index", pattern=pattern
    )
    first.refresh_from_db()
    assert (first.status, first.dismiss_reason) == ("dismissed", "the weekly batch re-index")
    event = AuditEvent.objects.get(action="costs.anomaly_dismissed")
    assert event.after == {"status": "dismissed", "pattern": pattern}
    found = services.anomalies_detect(today=weekly_spikes)
    # the same spike a week later, same weekday, same size: skipped unless the pattern differs
    assert (found == []) is skipped
    if not skipped:
        assert found[0].day == weekly_spikes - dt.timedelta(days=2)


def test_without_a_dismissal_the_second_spike_is_found(weekly_spikes):
    services.anomalies_detect(today=weekly_spikes - dt.timedelta(days=7))
    assert [a.day for a in services.anomalies_detect(today=weekly_spikes)] == [
        weekly_spikes - dt.timedelta(days=2)
    ]


def test_dismiss_needs_a_reason_and_the_teams_lead(spiky, manager, requester):
    [a] = services.anomalies_detect(today=spiky)
    with pytest.raises(ValidationError, match="say why"):
        alerts.anomaly_dismiss(actor=manager, anomaly_id=a.pk, reason=" ", pattern="level")
    with pytest.raises(NotPermitted):
        alerts.anomaly_dismiss(actor=requester, anomaly_id=a.pk, reason="x", pattern="level")
    a.refresh_from_db()
    assert (
        a.status == "open"
        and not AuditEvent.objects.filter(action="costs.anomaly_dismissed").exists()
    )


def test_snooze_silences_then_reopens(spiky, manager, clock, django_capture_on_commit_callbacks):
    alerts.subscription_create(
        actor=manager, scope="team", team_slug="payments", cadence="immediate", channel="email"
    )
    [a] = services.anomalies_detect(today=spiky)
    now = timezone.now()
    alerts.anomaly_snooze(actor=manager, anomaly_id=a.pk, until=now + dt.timedelta(hours=4))
    with django_capture_on_commit_callbacks(execute=True):
        assert alerts.anomaly_alerts_run(now=now + dt.timedelta(hours=1)) == {
            "woke": 0,
            "deliveries": 0,
        }
    assert mail.outbox == []
    clock.move_to(now + dt.timedelta(hours=5))
    with django_capture_on_commit_callbacks(execute=True):
        assert alerts.anomaly_alerts_run(now=now + dt.timedelta(hours=5)) == {
            "woke": 1,
            "deliveries": 1,
        }
    a.refresh_from_db()
    assert a.status == "open" and a.snoozed_until is None
    assert len(mail.outbox) == 1
    alerts.anomaly_dismiss(actor=manager, anomaly_id=a.pk, reason="known", pattern="level")
    with pytest.raises(InvalidTransition):  # dismissed is final
        alerts.anomaly_snooze(actor=manager, anomaly_id=a.pk, until=now + dt.timedelta(days=6))
    with pytest.raises(ValidationError, match="future"):
        alerts.anomaly_snooze(actor=manager, anomaly_id=a.pk, until=now)


def test_api_and_pages(spiky, client, manager, org):
    from tests.conftest import make_user

    [a] = services.anomalies_detect(today=spiky)
    client.force_login(manager)
    assert [
        x["id"] for x in client.get("/api/v1/costs/anomalies/", {"state": "open"}).json()["results"]
    ] == [a.pk]
    assert client.get("/api/v1/costs/anomalies/", {"state": "gone"}).status_code == 400
    page = client.get("/costs/anomalies/", {"status": "open"}).content.decode()
    assert "Dismiss as expected" in page and "Snooze" in page
    search_lead = make_user("lead@search.example", team=org["search"], lead=True)
    client.force_login(search_lead)
    decision = {"action": "dismiss", "reason": "batch", "pattern": "weekday"}
    assert (
        client.post(
            f"/api/v1/costs/anomalies/{a.pk}/decision", decision, content_type="application/json"
        ).status_code
        == 404
    )
    assert (
        client.post(
            f"/costs/anomalies/{a.pk}/dismiss/", {"reason": "x", "pattern": "level"}
        ).status_code
        == 404
    )
    a.refresh_from_db()
    assert a.status == "open"
    client.force_login(manager)
    r = client.post(
        f"/api/v1/costs/anomalies/{a.pk}/decision", decision, content_type="application/json"
    )
    assert r.status_code == 200 and r.json()["status"] == "dismissed"
    assert client.get("/api/v1/costs/anomalies/", {"state": "dismissed"}).json()["count"] == 1
    again = client.post(
        f"/api/v1/costs/anomalies/{a.pk}/decision",
        {"action": "snooze", "until": "2030-01-01T00:00:00Z"},
        content_type="application/json",
    )
    assert again.status_code in (400, 409)
    # subscriptions through the API: own ones only
    created = client.post(
        "/api/v1/costs/anomaly-subscriptions/",
        {
            "scope": "team",
            "team": "payments",
            "cadence": "weekly",
            "channel": "email",
            "min_impact": "50",
        },
        content_type="application/json",
    )
    assert created.status_code == 201 and created.json()["team"] == "payments"
    sub_id = created.json()["id"]
    assert client.get("/api/v1/costs/anomaly-subscriptions/").json()["count"] == 1
    client.force_login(search_lead)
    assert client.get("/api/v1/costs/anomaly-subscriptions/").json()["count"] == 0
    assert client.delete(f"/api/v1/costs/anomaly-subscriptions/{sub_id}").status_code == 404
    refused = client.post(
        "/api/v1/costs/anomaly-subscriptions/",
        {"scope": "team", "team": "payments", "cadence": "weekly", "channel": "email"},
        content_type="application/json",
    )
    assert refused.status_code == 400 and AnomalySubscription.objects.count() == 1
    client.force_login(manager)
    assert client.delete(f"/api/v1/costs/anomaly-subscriptions/{sub_id}").status_code == 204
    # the subscription page
    response = client.post(
        "/costs/anomalies/subscriptions/",
        {
            "scope": "service",
            "service_name": "Amazon S3",
            "cadence": "daily",
            "channel": "email",
            "min_impact": "5",
        },
    )
    assert response.status_code == 302
    assert "Amazon S3" in client.get("/costs/anomalies/subscriptions/").content.decode()
