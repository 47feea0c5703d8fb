"""End to end with a real SCIM server (scim2-server's test server, its own process on a free
loopback port) and a real Celery worker process, Redis and PostgreSQL: approving a request for
a SCIM-backed entitlement makes the membership appear in the server through the outbox and
the worker; revoking removes it; reconciliation repairs drift made directly in the server; a
throttled downstream (429 twice, Retry-After) is retried no sooner than it asked."""

from __future__ import annotations

import time
import uuid
from types import SimpleNamespace

import pytest

from access import services
from access.models import DriftItem, Grant, ReconciliationRun, Service, SyncJob
from access.services.reconciliation import reconcile_service
from audit.models import AuditEvent
from portal.celery import app as celery_app
from tests.access.factories import make_entitlement, make_users_policy
from tests.conftest import make_user
from tests.connectors.scim_server import Throttle, running_scim_server, throttling_proxy
from tests.integration.provisioning_support import (
    GRACE_SECONDS,
    LEASE_SECONDS,
    cleanup_queues,
    make_worker,
    redis_client,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.xdist_group("integration"),
    pytest.mark.django_db(transaction=True),
]

TOKEN_ENV = "TOLLGATE_TEST_SCIM_E2E_TOKEN"


@pytest.fixture(scope="module")
def scim_server():
    with running_scim_server() as server:
        yield server


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, scim_server, tmp_path_factory):
    redis_client()
    no_pg = SimpleNamespace(dsn_env="TOLLGATE_TEST_UNUSED_DSN", dsn="")
    with django_db_blocker.unblock():
        handle = make_worker(
            tmp_path_factory.mktemp("scim"),
            no_pg,  # type: ignore[arg-type]
            extra_env={TOKEN_ENV: scim_server.token},
        )
    try:
        handle.start()
        yield handle
    finally:
        handle.stop()
        cleanup_queues(handle)


@pytest.fixture(autouse=True)
def real_queue(worker, scim_server, settings, monkeypatch):
    settings.TOLLGATE_SYNC_QUEUE = worker.queue
    settings.TOLLGATE_NOTIFY_QUEUE = worker.notify_queue
    settings.TOLLGATE_SYNC_LEASE_SECONDS = LEASE_SECONDS
    settings.TOLLGATE_SYNC_SWEEP_GRACE_SECONDS = GRACE_SECONDS
    monkeypatch.setenv(TOKEN_ENV, scim_server.token)
    celery_app.conf.task_always_eager = False
    yield
    celery_app.conf.task_always_eager = True


def scim_service(base_url: str, slug: str, owner_team) -> Service:
    return Service.objects.create(
        slug=slug,
        name=slug.title(),
        owner_team=owner_team,
        connector="scim",
        connector_config={"base_url": base_url, "token_env": TOKEN_ENV},
    )


def status_of(obj) -> str:
    return type(obj).objects.values_list("status", flat=True).get(pk=obj.pk)


def request_and_approve(principal, approver, entitlement) -> Grant:
    req = services.access_request_submit(
        actor=principal, principal=principal, entitlement=entitlement, justification="on call"
    )
    services.access_request_approve(actor=approver, request_id=req.pk, reason="fine")
    return Grant.objects.get(principal=principal, entitlement=entitlement)


def test_approve_revoke_and_reconcile_against_a_real_scim_server(worker, scim_server, org):
    tag = uuid.uuid4().hex[:8]
    group = f"wiki-editors-{tag}"
    scim_server.create_group(group)
    approver = make_user(f"lead.{tag}@example.com", team=org["search"])
    ann = make_user(f"ann.{tag}@example.com", team=org["payments"])
    bob = make_user(f"bob.{tag}@example.com", team=org["payments"])
    service = scim_service(scim_server.base_url, f"wiki-{tag}", org["search"])
    ent = make_entitlement(
        service,
        slug="edit",
        policy=make_users_policy(f"wiki-{tag}", [approver], 1),
        connector_config={"group": group},
    )

    # Approving a request makes the membership appear downstream, through the worker.
    grant = request_and_approve(ann, approver, ent)
    worker.wait_for(lambda: status_of(grant) == "active", "the grant to be provisioned")
    assert scim_server.member_user_names(group) == [ann.email]
    [user] = scim_server.users(ann.email)
    assert (user.external_id, user.active) == (ann.email, True)
    job = SyncJob.objects.get(grant=grant, operation="grant")
    assert (job.status, job.attempts, job.changed) == ("done", 1, True)
    assert job.detail == f"added {ann.email} to SCIM group {group} (user created)"

    # Revoking removes it.
    services.grant_revoke(actor=ann, grant_id=grant.pk, reason="done with it")
    worker.wait_for(lambda: status_of(grant) == "revoked", "the revocation")
    assert scim_server.member_user_names(group) == []
    assert len(scim_server.users(ann.email)) == 1  # the user stays; no duplicate later

    # Drift made directly in the server: bob's membership removed, a stranger added.
    bob_grant = request_and_approve(bob, approver, ent)
    worker.wait_for(lambda: status_of(bob_grant) == "active", "bob's grant")
    from scim2_models import Group, PatchOp, PatchOperation, SearchRequest, User

    with scim_server.client() as scim:
        gid = (
            scim.query(Group, query_parameters=SearchRequest(filter=f'displayName eq "{group}"'))
            .resources[0]
            .id
        )
        bob_id = scim_server.users(bob.email)[0].id
        stranger = scim.create(User(user_name=f"stranger.{tag}@example.com", active=True))
        scim.modify(
            Group,
            gid,
            PatchOp[Group](
                operations=[
                    PatchOperation(op="remove", path=f'members[value eq "{bob_id}"]'),
                    PatchOperation(op="add", path="members", value=[{"value": stranger.id}]),
                ]
            ),
        )
    assert scim_server.member_user_names(group) == [f"stranger.{tag}@example.com"]

    run = reconcile_service(service_id=service.pk, mode=ReconciliationRun.Mode.ENFORCE)
    assert (run.status, run.missing, run.unmanaged, run.jobs_created) == ("done", 1, 1, 2)
    assert sorted(
        DriftItem.objects.filter(run=run).values_list("kind", "principal_login")
    ) == sorted([("missing", bob.email), ("unmanaged", f"stranger.{tag}@example.com")])
    worker.wait_for(
        lambda: (
            not SyncJob.objects.filter(service=service, origin="reconcile")
            .exclude(status="done")
            .exists()
        ),
        "the repair jobs",
    )
    assert scim_server.member_user_names(group) == [bob.email]
    again = reconcile_service(service_id=service.pk, mode=ReconciliationRun.Mode.REPORT)
    assert (again.missing, again.unmanaged, again.grants_checked, again.holders_seen) == (
        0,
        0,
        1,
        1,
    )


def test_a_throttled_scim_server_is_retried_after_what_it_asked(worker, scim_server, org):
    tag = uuid.uuid4().hex[:8]
    group = f"billing-{tag}"
    scim_server.create_group(group)
    cat = make_user(f"cat.{tag}@example.com", team=org["payments"])
    approver = make_user(f"lead.{tag}@example.com", team=org["search"])
    with throttling_proxy(scim_server, Throttle(failures=2, retry_after="2")) as proxy:
        service = scim_service(proxy.base_url, f"billing-{tag}", org["search"])
        ent = make_entitlement(
            service,
            slug="view",
            policy=make_users_policy(f"billing-{tag}", [approver], 1),
            connector_config={"group": group},
        )
        started = time.monotonic()
        grant = request_and_approve(cat, approver, ent)
        worker.wait_for(lambda: status_of(grant) == "active", "the throttled grant")
        elapsed = time.monotonic() - started

    assert proxy.refused == 2
    job = SyncJob.objects.get(grant=grant, operation="grant")
    assert (job.status, job.attempts) == ("done", 3)
    # The worker's own backoff is at most 1 s here (TOLLGATE_SYNC_BACKOFF_CAP): only the
    # Retry-After of 2 s, twice, makes it take 4 s or more.
    assert elapsed >= 4.0
    defers = AuditEvent.objects.filter(
        target_type="access.syncjob", target_id=str(job.pk), action="sync_job.defer"
    ).values_list("reason", flat=True)
    assert len(defers) == 2
    assert all("answered HTTP 429: slow down; retry after 2s" in reason for reason in defers)
    assert scim_server.member_user_names(group) == [cat.email]
