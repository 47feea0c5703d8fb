"""Provisioning faults with a real Celery worker process, real Redis and PostgreSQL, and
the real PostgreSQL role connector against a throwaway target database.

Redis is shared with other test runs, so it is never stopped: "Redis down at enqueue"
points this process's producer at a closed port for the commit, then restores it.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from access import services
from access.models import Grant, ManualTask, Service, SyncJob
from access.sync import outbox
from accounts.models import PlatformRole
from accounts.services import user_mark_leaver
from audit.models import AuditEvent
from connectors.webhook import verify_signature
from portal.celery import app as celery_app
from tests.access.factories import grant_directly, make_entitlement
from tests.access.sync_support import actions_for, auto_entitlement
from tests.conftest import make_user
from tests.integration.provisioning_support import (
    GRACE_SECONDS,
    LEASE_SECONDS,
    BrokerDown,
    cleanup_queues,
    drop_pg_target,
    make_pg_target,
    make_worker,
    redis_client,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.xdist_group("integration"),
    pytest.mark.django_db(transaction=True),
]

WEBHOOK_SECRET_ENV = "TOLLGATE_TEST_WEBHOOK_SECRET"
WEBHOOK_SECRET = "test-webhook-secret-0123456789"


@pytest.fixture(scope="module")
def target():
    target = make_pg_target()
    try:
        yield target
    finally:
        drop_pg_target(target)


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, target, tmp_path_factory):
    redis_client()
    with django_db_blocker.unblock():
        handle = make_worker(
            tmp_path_factory.mktemp("provisioning"),
            target,
            extra_env={WEBHOOK_SECRET_ENV: WEBHOOK_SECRET},
        )
    try:
        handle.start()
        yield handle
    finally:
        handle.stop()
        cleanup_queues(handle)


@pytest.fixture(autouse=True)
def real_queue(worker, target, settings, monkeypatch):
    settings.TOLLGATE_SYNC_QUEUE = worker.queue
    settings.TOLLGATE_NOTIFY_QUEUE = worker.notify_queue
    settings.TOLLGATE_SYNC_LEASE_SECONDS = LEASE_SECONDS
    settings.TOLLGATE_SYNC_SWEEP_GRACE_SECONDS = GRACE_SECONDS
    monkeypatch.setenv(target.dsn_env, target.dsn)
    celery_app.conf.task_always_eager = False
    yield
    celery_app.conf.task_always_eager = True


def pg_service(target, slug: str, owner_team, roles: dict[str, str], **config) -> Service:
    return Service.objects.create(
        slug=slug,
        name=slug.title(),
        owner_team=owner_team,
        connector="postgres",
        connector_config=target.config(roles=roles, **config),
    )


def submit(principal, entitlement) -> Grant:
    services.access_request_submit(
        actor=principal, principal=principal, entitlement=entitlement, justification="on call"
    )
    return Grant.objects.get(principal=principal, entitlement=entitlement)


def status_of(obj) -> str:
    return type(obj).objects.values_list("status", flat=True).get(pk=obj.pk)


def test_worker_killed_mid_grant_completes_exactly_once_after_restart(worker, target, org):
    ann = make_user("ann.kill@example.com", team=org["payments"])
    role = target.create_role("kill_read")
    ent = auto_entitlement(pg_service(target, "killdb", org["search"], {"read": role}), ann)
    login = target.login_for(ann.email)
    lock = target.hold_login_lock(login)  # the worker's GRANT waits inside its transaction
    try:
        grant = submit(ann, ent)
        job = SyncJob.objects.get(grant=grant)
        worker.wait_for(
            lambda: status_of(job) == "running" and target.waiting_on_lock(),
            "the worker to be inside the grant",
        )
        worker.kill()
    finally:
        lock.close()
    job.refresh_from_db()
    assert (job.status, job.attempts, status_of(grant)) == ("running", 1, "pending")
    assert target.members(role) == []

    worker.start()
    # After the lease the sweeper sends the job again; the restarted worker finishes it.
    time.sleep(
        max(
            0.0,
            (job.started_at + timedelta(seconds=LEASE_SECONDS) - timezone.now()).total_seconds(),
        )
        + 0.2
    )
    assert outbox.sync_jobs_sweep() == {"overdue": 0, "stale": 1, "errors": 0}
    worker.wait_for(lambda: status_of(grant) == "active", "the grant to become active")
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("done", 2)
    assert target.members(role) == [login]
    assert actions_for(job).count("sync_job.requeue") == 1

    # Revoking removes the membership downstream.
    services.grant_revoke(actor=ann, grant_id=grant.pk, reason="incident over")
    worker.wait_for(lambda: status_of(grant) == "revoked", "the revocation")
    assert target.members(role) == []


def test_broker_down_at_commit_then_the_sweeper_finishes(worker, target, org):
    bob = make_user("bob.broker@example.com", team=org["payments"])
    role = target.create_role("broker_read")
    ent = auto_entitlement(pg_service(target, "brokerdb", org["search"], {"read": role}), bob)
    with BrokerDown():
        grant = submit(bob, ent)  # on_commit(robust=True): the send fails, the commit stands
    job = SyncJob.objects.get(grant=grant)
    assert (status_of(grant), job.status, job.enqueued_at) == ("pending", "pending", None)
    time.sleep(GRACE_SECONDS + 0.5)
    assert (status_of(grant), status_of(job)) == ("pending", "pending")  # nothing was lost…
    assert target.members(role) == []

    assert outbox.sync_jobs_sweep() == {"overdue": 1, "stale": 0, "errors": 0}  # …and it runs
    worker.wait_for(lambda: status_of(grant) == "active", "the swept job to provision")
    assert target.members(role) == [target.login_for(bob.email)]
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("done", 1)


def test_transient_failures_then_success(worker, target, org):
    cat = make_user("cat.flaky@example.com", team=org["payments"])
    role = target.create_role("flaky_read")
    service = pg_service(target, "flakydb", org["search"], {"read": role}, statement_timeout_ms=250)
    ent = auto_entitlement(service, cat)
    login = target.login_for(cat.email)
    lock = target.hold_login_lock(login)  # every attempt times out: a transient error
    try:
        grant = submit(cat, ent)
        job = SyncJob.objects.get(grant=grant)
        worker.wait_for(
            lambda: SyncJob.objects.filter(pk=job.pk, attempts__gte=3, status="pending").exists(),
            "three failed attempts",
        )
        failing = SyncJob.objects.get(pk=job.pk)
        assert "timeout" in failing.last_error or "canceling" in failing.last_error
        assert status_of(grant) == "pending"
    finally:
        lock.close()
    worker.wait_for(lambda: status_of(grant) == "active", "success after the failures")
    job.refresh_from_db()
    assert job.status == "done" and job.attempts >= 4
    assert actions_for(job).count("sync_job.defer") == job.attempts - 1
    assert target.members(role) == [login]


def test_permanent_failure_is_visible_audited_notified_and_retry_works(worker, target, org, client):
    admin = make_user("ops@example.com", team=org["platform"], roles=[PlatformRole.PLATFORM_ADMIN])
    dan = make_user("dan.perm@example.com", team=org["payments"])
    role = target.role("not_there_yet")
    ent = auto_entitlement(pg_service(target, "permdb", org["search"], {"read": role}), dan)
    grant = submit(dan, ent)
    job = SyncJob.objects.get(grant=grant)
    worker.wait_for(lambda: status_of(job) == "failed", "the job to fail")
    job.refresh_from_db()
    assert (job.attempts, status_of(grant)) == (1, "failed")
    assert "does not exist" in job.last_error
    assert "sync_job.fail" in actions_for(job)
    assert "grant.fail" in actions_for(Grant.objects.get(pk=grant.pk))
    mail = worker.wait_for(
        lambda: [m for m in worker.mails() if f"Sync job #{job.pk}" in m], "the alert e-mail"
    )
    assert "To: ops@example.com" in mail[0]

    client.force_login(admin)
    page = client.get("/provisioning/jobs/failed/").content.decode()
    assert f'id="job-{job.pk}"' in page and "does not exist" in page

    target.create_role("not_there_yet")  # the fix
    response = client.post(f"/provisioning/jobs/{job.pk}/retry/")
    assert response.status_code == 302
    worker.wait_for(lambda: status_of(grant) == "active", "the retried job")
    assert target.members(role) == [target.login_for(dan.email)]


def test_duplicate_delivery_has_one_downstream_effect(worker, target, org):
    eve = make_user("eve.dup@example.com", team=org["payments"])
    role = target.create_role("dup_read")
    ent = auto_entitlement(pg_service(target, "dupdb", org["search"], {"read": role}), eve)
    with BrokerDown():
        grant = submit(eve, ent)
    job = SyncJob.objects.get(grant=grant)
    for _ in range(3):  # the same message delivered three times
        outbox.enqueue_job(job.pk)
    worker.wait_for(lambda: status_of(grant) == "active", "the grant")
    worker.wait_ready()  # a ping queued after the duplicates: they have all been handled
    job.refresh_from_db()
    assert (job.status, job.attempts, job.changed) == ("done", 1, True)
    assert actions_for(job).count("sync_job.start") == 1
    assert target.members(role) == [target.login_for(eve.email)]


class _Webhook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        ok = verify_signature(
            WEBHOOK_SECRET,
            self.headers.get("X-Tollgate-Timestamp"),
            body,
            self.headers.get("X-Tollgate-Signature"),
        )
        payload = json.loads(body)
        payload["_signed"] = ok
        payload["_key_header"] = self.headers.get("Idempotency-Key")
        type(self).received.append(payload)
        self.send_response(200 if ok else 401)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"changed": true}')

    def log_message(self, *args):
        pass


def test_leaver_with_20_grants_across_three_connectors(worker, target, org, client):
    from tokens.models import ApiToken
    from tokens.services import api_token_create

    admin = make_user("hr@example.com", team=org["platform"], roles=[PlatformRole.PLATFORM_ADMIN])
    leaver = make_user("lea.ver@example.com", team=org["payments"])
    ops = make_user("ops.manual@example.com", team=org["platform"], roles=["tg-manual-ops"])
    _Webhook.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Webhook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        roles = {f"r{i}": target.create_role(f"leaver_r{i}") for i in range(8)}
        pg = pg_service(target, "leaverdb", org["search"], roles)
        hook = Service.objects.create(
            slug="leaverhook",
            name="Hook",
            owner_team=org["search"],
            connector="webhook",
            connector_config={
                "url": f"http://127.0.0.1:{server.server_port}/access",
                "secret_env": WEBHOOK_SECRET_ENV,
                "timeout": 5,
            },
        )
        manual = Service.objects.create(
            slug="leaverdesk",
            name="Desk",
            owner_team=org["search"],
            connector="manual",
            connector_config={"group": "tg-manual-ops"},
        )
        login = target.login_for(leaver.email)
        grants = []
        for slug, role in roles.items():
            grants.append(grant_directly(leaver, make_entitlement(pg, slug=slug)))
            target.grant_directly(role, login)
        for i in range(6):
            grants.append(grant_directly(leaver, make_entitlement(hook, slug=f"h{i}")))
            grants.append(grant_directly(leaver, make_entitlement(manual, slug=f"m{i}")))
        assert len(grants) == 20 and len(target.memberships_of(login)) == 8
        api_token_create(actor=leaver, user=leaver, name="laptop")
        client.force_login(leaver)
        assert client.get("/grants/").status_code == 200

        user_mark_leaver(user=leaver, actor=admin, reason="last day")

        # Nothing of the leaver is active any more, at once.
        assert not Grant.objects.filter(principal=leaver, status="active").exists()
        assert ApiToken.objects.filter(user=leaver, revoked_at__isnull=True).count() == 0
        assert client.get("/grants/").status_code == 302
        worker.wait_for(
            lambda: ManualTask.objects.filter(status="open").count() == 6, "the manual tasks"
        )
        for task in ManualTask.objects.filter(status="open"):
            outbox.manual_task_answer(actor=ops, task_id=task.pk, outcome="done", note="removed")
        worker.wait_for(
            lambda: Grant.objects.filter(principal=leaver, status="revoked").count() == 20,
            "all 20 grants to be revoked",
        )
    finally:
        server.shutdown()
    assert target.memberships_of(login) == []
    revokes = [p for p in _Webhook.received if p["operation"] == "revoke"]
    assert len(revokes) == 6 and all(p["_signed"] for p in revokes)
    assert len({p["_key_header"] for p in revokes}) == 6
    assert SyncJob.objects.filter(origin="leaver").count() == 20
    assert set(SyncJob.objects.filter(origin="leaver").values_list("status", flat=True)) == {"done"}
    assert AuditEvent.objects.filter(action="grant.complete_revoke").count() == 20


def test_reconciliation_against_postgresql_enforces_through_the_worker(worker, target, org):
    from access.sync.reconcile import reconcile_service

    fay = make_user("fay.recon@example.com", team=org["payments"])
    role = target.create_role("recon_read")
    service = pg_service(target, "recondb", org["search"], {"read": role})
    grant = grant_directly(fay, make_entitlement(service, slug="read"))  # not downstream yet
    intruder = target.role("u_intruder")
    target.grant_directly(role, intruder)  # granted by hand, never through Tollgate

    run = reconcile_service(service_id=service.pk, mode="enforce")
    assert (run.missing, run.unmanaged, run.wrong_level, run.jobs_created) == (1, 1, 0, 2)
    # The worker changes the target first and marks its job done after: wait for both.
    worker.wait_for(
        lambda: (
            target.members(role) == [target.login_for(fay.email)]
            and SyncJob.objects.filter(status="done", origin="reconcile").count() == 2
        ),
        "the drift to be fixed and both jobs done",
    )
    assert status_of(grant) == "active"
    again = reconcile_service(service_id=service.pk, mode="report")
    assert (again.missing, again.unmanaged, again.wrong_level) == (0, 0, 0)
