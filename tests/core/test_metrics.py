"""Prometheus metrics at /metrics (O5): who may scrape, and that the series count what they say."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from access.models import ReconciliationRun, SyncJob
from audit.models import Verification
from costs.models import BillingSource, ImportRun
from portal.core import metrics
from portal.core.health import HEARTBEAT_KEY
from portal.core.tasks import ping
from tests.access.factories import make_service
from tests.api.conftest import catalog  # noqa: F401 (fixture)
from tests.api.test_check_api import CHECK, body, service_api

ROOT = Path(__file__).resolve().parents[2]


def scrape(client: Client | None = None, **extra) -> str:
    response = (client or Client()).get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return response.content.decode()


def value(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None


# --- who may scrape ----------------------------------------------------------------------


@pytest.mark.sqlite
def test_loopback_is_served_by_default(db):
    text = scrape()
    assert "tollgate_http_requests_total" in text


@pytest.mark.sqlite
def test_other_networks_are_refused_without_data(db):
    response = Client().get("/metrics", REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 403
    assert b"tollgate_" not in response.content


@pytest.mark.sqlite
def test_token_is_required_outside_the_allowed_networks(db, settings):
    settings.METRICS_TOKEN = "scrape-secret-1234"
    outside = {"REMOTE_ADDR": "203.0.113.9"}
    missing = Client().get("/metrics", **outside)
    wrong = Client().get("/metrics", headers={"Authorization": "Bearer nope"}, **outside)
    basic = Client().get(
        "/metrics", headers={"Authorization": "Basic scrape-secret-1234"}, **outside
    )
    for refused in (missing, wrong, basic):
        assert refused.status_code == 401
        assert refused["WWW-Authenticate"].startswith("Bearer")
        assert b"tollgate_" not in refused.content
    text = scrape(headers={"Authorization": "Bearer scrape-secret-1234"}, **outside)
    assert "tollgate_http_requests_total" in text


@pytest.mark.sqlite
def test_a_wrong_token_is_refused_even_from_loopback(db, settings):
    settings.METRICS_TOKEN = "scrape-secret-1234"
    response = Client().get("/metrics", headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401
    assert b"tollgate_" not in response.content
    unset = Client().get("/metrics", headers={"Authorization": "Bearer "})
    assert unset.status_code == 401


@pytest.mark.sqlite
def test_a_token_is_refused_when_none_is_configured(db, settings):
    settings.METRICS_TOKEN = ""
    response = Client().get("/metrics", headers={"Authorization": "Bearer "})
    assert response.status_code == 401


@pytest.mark.sqlite
def test_allowed_networks_are_configurable(db, settings):
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    assert Client().get("/metrics", REMOTE_ADDR="10.9.8.7").status_code == 200
    assert Client().get("/metrics").status_code == 403  # loopback no longer listed
    assert Client().post("/metrics", REMOTE_ADDR="10.9.8.7").status_code == 405


# --- HTTP requests -------------------------------------------------------------------------


@pytest.mark.sqlite
def test_requests_are_counted_by_route_name_never_by_path(db, requester):
    before = scrape()
    client = Client()
    client.get("/healthz")
    client.get("/no/such/page/for-anyone@example.com")
    client.get("/audit/")  # anonymous: redirected to sign-in before the view runs
    after = scrape()

    def delta(**labels):
        return (value(after, "tollgate_http_requests_total", **labels) or 0) - (
            value(before, "tollgate_http_requests_total", **labels) or 0
        )

    assert delta(route="healthz", method="GET", status="200") == 1
    assert delta(route="unmatched", method="GET", status="302") == 1
    assert delta(route="audit:search", method="GET", status="302") == 1
    assert "example.com" not in after and "/no/such" not in after
    assert (value(after, "tollgate_http_request_duration_seconds_count", route="healthz") or 0) > 0


@pytest.mark.sqlite
def test_route_label_set_is_bounded_to_url_patterns(db):
    client = Client()
    for i in range(5):
        client.get(f"/definitely-not-a-route-{uuid.uuid4().hex}-{i}")
    text = scrape()
    routes = {
        s.labels["route"]
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "tollgate_http_requests_total"
    }
    assert not any("definitely" in r for r in routes)


# --- the check API ---------------------------------------------------------------------------


def test_check_decisions_and_the_layer_that_answered(db, catalog, requester):  # noqa: F811
    from tests.access.factories import grant_directly

    api = service_api(catalog["search_db"])
    grant_directly(requester, catalog["read"], days=10)
    before = scrape()
    assert api.post(CHECK, body(requester.email)).json()["allowed"] is True  # database
    assert api.post(CHECK, body(requester.email)).json()["allowed"] is True  # a cache layer
    assert api.post(CHECK, body(requester.email, entitlement="admin")).json()["allowed"] is False
    after = scrape()

    def delta(name, **labels):
        return (value(after, name, **labels) or 0) - (value(before, name, **labels) or 0)

    assert delta("tollgate_check_decisions_total", decision="allowed") == 2
    assert delta("tollgate_check_decisions_total", decision="denied") == 1
    assert delta("tollgate_check_decisions_total", decision="error") == 0
    assert delta("tollgate_check_answers_total", layer="database") == 2
    cached = delta("tollgate_check_answers_total", layer="near") + delta(
        "tollgate_check_answers_total", layer="redis"
    )
    assert cached == 1
    assert delta("tollgate_check_duration_seconds_count", kind="single") == 3


def test_a_check_that_raises_counts_as_an_error(db, catalog, requester, monkeypatch):  # noqa: F811
    from access import check

    def broken(**kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr(check, "decide_from_db", broken)
    before = value(scrape(), "tollgate_check_decisions_total", decision="error") or 0
    with pytest.raises(RuntimeError):
        check.check_many([(requester.email, "search-db", "read")])
    after = value(scrape(), "tollgate_check_decisions_total", decision="error")
    assert after == before + 1


# --- Celery, queues, heartbeat -----------------------------------------------------------------


def test_task_runs_are_counted_by_task_name(db):
    name = "portal.core.tasks.ping"
    before = scrape()
    ping.delay("metrics-test")
    after = scrape()
    runs = value(after, "tollgate_celery_task_runs_total", task=name, state="SUCCESS") or 0
    assert (
        runs - (value(before, "tollgate_celery_task_runs_total", task=name, state="SUCCESS") or 0)
        == 1
    )
    assert (value(after, "tollgate_celery_task_duration_seconds_count", task=name) or 0) >= 1


def test_failures_and_retries_are_counted(db):
    class Sender:
        name = "access.tasks.run_sync_job"

    before = scrape()
    metrics._on_failure(sender=Sender())
    metrics._on_retry(sender=Sender())
    after = scrape()
    for metric in ("tollgate_celery_task_failures_total", "tollgate_celery_task_retries_total"):
        assert (value(after, metric, task=Sender.name) or 0) - (
            value(before, metric, task=Sender.name) or 0
        ) == 1


def test_queue_depth_and_heartbeat_are_read_from_redis(db, settings):
    assert settings.CELERY_BROKER_URL.startswith("redis://")
    queue = f"metrics-test-{uuid.uuid4().hex[:8]}"
    settings.METRICS_QUEUES = [queue]
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        client.rpush(queue, "a", "b", "c")
        client.set(HEARTBEAT_KEY, "1700000000.5")
        text = scrape()
    finally:
        client.delete(queue)
    assert value(text, "tollgate_celery_queue_length", queue=queue) == 3
    assert value(text, "tollgate_worker_heartbeat_timestamp_seconds") == 1700000000.5


def test_a_failing_collector_leaves_the_rest_of_the_scrape(db, monkeypatch):
    def broken():
        raise ConnectionError("redis is down")

    monkeypatch.setitem(metrics._collectors, "core.queues", broken)
    text = scrape()
    assert value(text, "tollgate_metrics_collector_errors_total", collector="core.queues") >= 1
    assert value(text, "tollgate_sync_jobs", status="pending") is not None
    assert "tollgate_celery_queue_length" not in text


# --- sync jobs, drift, audit, ingestion ------------------------------------------------------


def test_sync_jobs_oldest_pending_and_drift(db, org, clock):
    service = make_service(org["search"], slug="billing")
    SyncJob.objects.create(
        service=service,
        connector="fake",
        operation="grant",
        entitlement_slug="read",
        idempotency_key="k1",
        created_at=timezone.now() - timedelta(minutes=7),
    )
    SyncJob.objects.create(
        service=service,
        connector="fake",
        operation="grant",
        entitlement_slug="admin",
        idempotency_key="k2",
        status=SyncJob.Status.FAILED,
    )
    ReconciliationRun.objects.create(
        service=service, status=ReconciliationRun.Status.DONE, missing=3, unmanaged=1
    )
    text = scrape()
    assert value(text, "tollgate_sync_jobs", status="pending") == 1
    assert value(text, "tollgate_sync_jobs", status="failed") == 1
    assert value(text, "tollgate_sync_jobs", status="done") == 0
    assert 420 <= value(text, "tollgate_sync_job_oldest_pending_age_seconds") < 430
    assert value(text, "tollgate_drift_items", service="billing", kind="missing") == 3
    assert value(text, "tollgate_drift_items", service="billing", kind="unmanaged") == 1
    assert value(text, "tollgate_drift_items", service="billing", kind="wrong_level") == 0


def test_no_pending_job_is_age_zero(db):
    assert value(scrape(), "tollgate_sync_job_oldest_pending_age_seconds") == 0


def test_audit_head_and_last_verification(db, requester):
    from audit.services import audit_record

    event = audit_record(actor=None, action="user.updated", target=requester)
    assert value(scrape(), "tollgate_audit_last_verification_ok") is None
    call_command("verify_audit", stdout=open(os.devnull, "w"))  # noqa: SIM115
    text = scrape()
    assert value(text, "tollgate_audit_head_seq") == event.seq
    assert value(text, "tollgate_audit_head_timestamp_seconds") == event.occurred_at.timestamp()
    assert value(text, "tollgate_audit_last_verification_ok") == 1
    last = Verification.objects.get()
    assert value(text, "tollgate_audit_last_verification_timestamp_seconds") == last.at.timestamp()


def test_a_failed_verification_reports_zero(db, requester):
    from audit.services import audit_record
    from audit.tasks import audit_verify

    audit_record(actor=None, action="user.updated", target=requester)
    settings.AUDIT_CHECKPOINT_FILE.write_text('{"seq": 1, "hash": "' + "f" * 64 + '"}\n')
    audit_verify.delay()
    assert value(scrape(), "tollgate_audit_last_verification_ok") == 0
    assert "does not match" in Verification.objects.get().detail


def test_ingestion_rows_bytes_and_failures(db):
    source = BillingSource.objects.create(name="aws")
    now = timezone.now()
    ImportRun.objects.create(
        source=source, file_name="a.csv", status="succeeded", rows_loaded=90,
        rows_rejected=10, file_size=4096, finished_at=now,
    )  # fmt: skip
    ImportRun.objects.create(
        source=source, file_name="b.csv", status="failed", file_size=99, finished_at=now
    )
    text = scrape()
    assert value(text, "tollgate_ingest_rows_total", outcome="loaded") == 90
    assert value(text, "tollgate_ingest_rows_total", outcome="rejected") == 10
    assert value(text, "tollgate_ingest_bytes_total") == 4096
    assert value(text, "tollgate_ingest_failed_runs_total") == 1
    assert value(text, "tollgate_ingest_runs", status="running") == 0
    assert value(text, "tollgate_ingest_last_failure_timestamp_seconds") == now.timestamp()


# --- conventions ------------------------------------------------------------------------------


def test_names_and_labels_follow_prometheus_conventions(db, catalog, requester):  # noqa: F811
    service_api(catalog["search_db"]).post(CHECK, body(requester.email))
    text = scrape()
    families = list(text_string_to_metric_families(text))
    ours = [f for f in families if f.name.startswith("tollgate_")]
    assert len(ours) >= 15
    forbidden_labels = {"user", "email", "principal", "user_id", "path", "url"}
    for family in ours:
        assert re.fullmatch(r"tollgate_[a-z0-9_]+", family.name)
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples)
        if family.type == "histogram":
            assert family.name.endswith("_seconds")
        for sample in family.samples:
            assert not forbidden_labels & set(sample.labels)
            assert "@" not in "".join(sample.labels.values())


# --- several processes: one sum -----------------------------------------------------------------

_CHILD = """
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
from portal.core import metrics
if sys.argv[1] == "count":
    metrics.HTTP_REQUESTS.labels(route="healthz", method="GET", status="200").inc(int(sys.argv[2]))
else:
    sys.stdout.write(metrics.exposition().decode())
"""


def test_multiprocess_mode_adds_up_every_process(tmp_path):
    """Under gunicorn every worker process writes its counts; a scrape of any one sums all."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for n in (2, 5):
        subprocess.run(
            [sys.executable, "-c", _CHILD, "count", str(n)], cwd=ROOT, env=env, check=True
        )
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, "show"], cwd=ROOT, env=env, check=True, capture_output=True
    ).stdout.decode()
    assert (
        value(out, "tollgate_http_requests_total", route="healthz", method="GET", status="200") == 7
    )
