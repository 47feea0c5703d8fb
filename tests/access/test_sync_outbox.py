"""The provisioning outbox with the in-memory fake connector (tasks run eagerly)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from access import services
from access.models import Grant, ManualTask, Service, SyncJob
from access.sync import outbox
from audit.models import AuditEvent
from connectors.fake import FakeConnector
from portal.core.errors import Conflict, NotFound, NotPermitted, ValidationError
from tests.access.factories import make_entitlement
from tests.access.sync_support import (
    actions_for,
    auto_entitlement,
    fake_service,
    fresh_fakes,  # noqa: F401
    job_of,
    request_grant,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_fakes")]


@pytest.fixture
def billing(org):
    return fake_service(org["search"], "billing")


@pytest.fixture
def backend(billing):
    return FakeConnector.backend("billing")


def test_approved_grant_is_written_to_the_outbox_and_provisioned_after_commit(
    requester, billing, backend, django_capture_on_commit_callbacks
):
    ent = auto_entitlement(billing, requester)
    grant = request_grant(requester, ent, django_capture_on_commit_callbacks, execute=False)
    job = job_of(grant)
    # Inside the approval's transaction: the grant is pending with its job; nothing downstream.
    assert (grant.status, job.status, job.attempts) == ("pending", "pending", 0)
    assert job.idempotency_key == f"tg-grant-g{grant.pk}-v1-new"
    assert backend.calls_for("grant") == []

    outbox.enqueue_job(job.pk)  # what the on_commit callback does

    grant.refresh_from_db()
    job.refresh_from_db()
    assert (grant.status, job.status, job.attempts, job.changed) == ("active", "done", 1, True)
    assert backend.holds("requester@example.com", "read")
    assert backend.effects == 1
    assert actions_for(job) == [
        "sync_job.created",
        "sync_job.start",
        "sync_job.succeed",
    ]
    assert actions_for(grant) == ["grant.created", "grant.activate"]


@pytest.mark.sqlite
def test_service_without_connector_activates_at_once_with_no_job(
    requester, org, django_capture_on_commit_callbacks
):
    plain = Service.objects.create(slug="wiki", name="Wiki", owner_team=org["search"])
    ent = auto_entitlement(plain, requester)
    grant = request_grant(requester, ent, django_capture_on_commit_callbacks)
    assert grant.status == "active"
    assert SyncJob.objects.count() == 0


def test_duplicate_delivery_has_one_downstream_effect(
    requester, billing, backend, django_capture_on_commit_callbacks
):
    ent = auto_entitlement(billing, requester)
    grant = request_grant(requester, ent, django_capture_on_commit_callbacks)
    job = job_of(grant)
    audit_before = AuditEvent.objects.count()

    assert outbox.sync_job_run(job_id=job.pk) == "noop"
    assert outbox.sync_job_run(job_id=job.pk) == "noop"

    assert backend.effects == 1
    assert len(backend.calls_for("grant")) == 1
    assert AuditEvent.objects.count() == audit_before


def test_a_retry_after_longer_than_the_backoff_is_honoured(
    requester, billing, backend, django_capture_on_commit_callbacks, settings
):
    settings.TOLLGATE_SYNC_BACKOFF_BASE = 1
    backend.inject(transient=1, retry_after=120)
    ent = auto_entitlement(billing, requester)
    grant = request_grant(requester, ent, django_capture_on_commit_callbacks)
    job = job_of(grant)
    assert (job.status, job.attempts) == ("pending", 1)
    assert (job.next_attempt_at - job.updated_at).total_seconds() >= 119.9  # not the 1 s backoff
    just_before = job.next_attempt_at - timedelta(seconds=5)
    assert outbox.sync_job_run(job_id=job.pk, now=just_before) == "early"
    assert outbox.sync_job_run(job_id=job.pk, now=job.next_attempt_at) == "done"
    assert backend.effects == 1


def test_a_short_retry_after_does_not_shorten_the_backoff(
    requester, billing, backend, django_capture_on_commit_callbacks, settings
):
    settings.TOLLGATE_SYNC_BACKOFF_BASE = 10
    backend.inject(transient=1, retry_after=0.5)
    ent = auto_entitlement(billing, requester)
    job = job_of(request_grant(requester, ent, django_capture_on_commit_callbacks))
    assert 5 <= (job.next_attempt_at - job.updated_at).total_seconds() <= 10.5


def test_transient_failures_back_off_then_succeed(
    requester, billing, backend, django_capture_on_commit_callbacks, settings
):
    settings.TOLLGATE_SYNC_BACKOFF_BASE = 10
    backend.inject(transient=2)
    ent = auto_entitlement(billing, requester)
    grant = request_grant(requester, ent, django_capture_on_commit_callbacks)
    job = job_of(grant)
    assert (job.status, job.attempts) == ("pending", 1)
    assert "transient" in job.last_error.lower() or job.last_error
    first_delay = (job.next_attempt_at - job.updated_at).total_seconds()
    assert 5 <= first_delay <= 10.5  # base * 2**0 with jitter in [0.5, 1]

    # A message arriving before next_attempt_at changes nothing.
    assert outbox.sync_job_run(job_id=job.pk) == "early"
    assert len(backend.calls_for("grant")) == 1

    assert outbox.sync_job_run(job_id=job.pk, now=job.next_attempt_at) == "deferred"
    job.refresh_from_db()
    second_delay = (job.next_attempt_at - job.updated_at).total_seconds()
    assert (job.status, job.attempts) == ("pending", 2)
    assert 10 <= second_delay <= 20.5
    assert outbox.sync_job_run(job_id=job.pk, now=job.next_attempt_at) == "done"
    job.refresh_from_db()
    grant.refresh_from_db()
    assert (job.status, job.attempts, grant.status) == ("done", 3, "active")
    assert backend.effects == 1
    assert actions_for(job).count("sync_job.defer") == 2


def test_transient_failures_stop_at_the_bound_and_alert(
    requester, admin, billing, backend, django_capture_on_commit_callbacks, settings
):
    settings.TOLLGATE_SYNC_MAX_ATTEMPTS = 3
    backend.inject(transient=10)
    ent = auto_entitlement(billing, requester)
    grant = request_grant(requester, ent, django_capture_on_commit_callbacks)
    job = job_of(grant)
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(2):
            job.refresh_from_db()
            outbox.sync_job_run(job_id=job.pk, now=job.next_attempt_at)
    job.refresh_from_db()
    grant.refresh_from_db()
    assert (job.status, job.attempts, grant.status) == ("failed", 3, "failed")
    assert job.last_error.startswith("gave up after 3 attempts: ")
    assert len(backend.calls_for("grant")) == 3
    assert [m.to for m in mail.outbox if "Provisioning failed" in m.subject] == [
        ["admin@example.com"]
    ]
    # Nothing runs a failed job again until someone presses retry.
    assert outbox.sync_job_run(job_id=job.pk, now=timezone.now() + timedelta(days=1)) == "noop"


def test_permanent_failure_is_failed_audited_notified_and_retry_works(
    requester, admin, billing, backend, django_capture_on_commit_callbacks
):
    backend.inject(permanent=1)
    ent = auto_entitlement(billing, requester)
    grant = request_grant(requester, ent, django_capture_on_commit_callbacks)
    job = job_of(grant)
    grant.refresh_from_db()
    assert (job.status, job.attempts, grant.status) == ("failed", 1, "failed")
    assert "sync_job.fail" in actions_for(job)
    assert "grant.fail" in actions_for(grant)
    assert len([m for m in mail.outbox if "Provisioning failed" in m.subject]) == 1

    with django_capture_on_commit_callbacks(execute=True):
        outbox.sync_job_retry(actor=admin, job_id=job.pk, reason="fixed the permissions")
    job.refresh_from_db()
    grant.refresh_from_db()
    assert (job.status, job.attempts, grant.status) == ("done", 1, "active")
    assert backend.holds("requester@example.com", "read")
    assert actions_for(grant)[-2:] == ["grant.retry", "grant.activate"]


def test_retry_refused_for_non_platform_team_and_for_jobs_not_failed(
    requester, service_owner, admin, billing, backend, django_capture_on_commit_callbacks
):
    backend.inject(permanent=1)
    ent = auto_entitlement(billing, requester)
    grant = request_grant(requester, ent, django_capture_on_commit_callbacks)
    job = job_of(grant)
    audit_before = AuditEvent.objects.count()
    with pytest.raises(NotPermitted):
        outbox.sync_job_retry(actor=service_owner, job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, AuditEvent.objects.count()) == ("failed", audit_before)
    with django_capture_on_commit_callbacks(execute=True):
        outbox.sync_job_retry(actor=admin, job_id=job.pk)
    with pytest.raises(Conflict):
        outbox.sync_job_retry(actor=admin, job_id=job.pk)


def test_stale_running_job_is_requeued_and_completes_once(
    requester, billing, backend, django_capture_on_commit_callbacks, settings
):
    ent = auto_entitlement(billing, requester)
    grant = request_grant(requester, ent, django_capture_on_commit_callbacks, execute=False)
    job = job_of(grant)
    # A worker claimed it and died (after the downstream call went through).
    SyncJob.objects.filter(pk=job.pk).update(
        status="running", attempts=1, started_at=timezone.now()
    )
    backend.set_holder("requester@example.com", "read")
    assert outbox.sync_job_run(job_id=job.pk) == "busy"  # inside the lease: someone runs it

    later = timezone.now() + timedelta(seconds=settings.TOLLGATE_SYNC_LEASE_SECONDS + 1)
    assert outbox.sync_job_run(job_id=job.pk, now=later) == "done"
    job.refresh_from_db()
    grant.refresh_from_db()
    assert (job.status, job.attempts, job.changed, grant.status) == ("done", 2, False, "active")
    assert backend.effects == 0  # the first (lost) call made the change; no second effect
    assert "sync_job.requeue" in actions_for(job)


def test_sweeper_sends_jobs_whose_message_was_lost(
    requester, billing, backend, django_capture_on_commit_callbacks, settings
):
    ent = auto_entitlement(billing, requester)
    grant = request_grant(requester, ent, django_capture_on_commit_callbacks, execute=False)
    job = job_of(grant)
    # Not yet overdue: the sweeper leaves it to its own message.
    assert outbox.sync_jobs_sweep() == {"overdue": 0, "stale": 0, "errors": 0}
    later = timezone.now() + timedelta(seconds=settings.TOLLGATE_SYNC_SWEEP_GRACE_SECONDS + 1)
    assert outbox.sync_jobs_sweep(now=later) == {"overdue": 1, "stale": 0, "errors": 0}
    job.refresh_from_db()
    grant.refresh_from_db()
    assert (job.status, grant.status) == ("done", "active")
    assert job.enqueued_at is not None


def test_revoke_goes_through_the_outbox(
    requester, billing, backend, django_capture_on_commit_callbacks
):
    ent = auto_entitlement(billing, requester)
    grant = request_grant(requester, ent, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        services.grant_revoke(actor=requester, grant_id=grant.pk, reason="done with it")
    grant.refresh_from_db()
    revoke = job_of(grant, "revoke")
    assert (grant.status, revoke.status, revoke.origin) == ("revoked", "done", "revoke")
    assert grant.revoked_at is not None
    assert not backend.holds("requester@example.com", "read")
    assert actions_for(grant)[-2:] == ["grant.revoke", "grant.complete_revoke"]


def test_revoking_before_the_grant_job_ran_cancels_it(
    requester, billing, backend, django_capture_on_commit_callbacks
):
    ent = auto_entitlement(billing, requester)
    grant = request_grant(requester, ent, django_capture_on_commit_callbacks, execute=False)
    with django_capture_on_commit_callbacks(execute=False):
        services.grant_revoke(actor=requester, grant_id=grant.pk, reason="changed my mind")
    grant_job, revoke_job = job_of(grant), job_of(grant, "revoke")
    assert (grant_job.status, revoke_job.status) == ("cancelled", "pending")
    assert outbox.sync_job_run(job_id=grant_job.pk) == "noop"
    assert outbox.sync_job_run(job_id=revoke_job.pk) == "done"
    grant.refresh_from_db()
    assert grant.status == "revoked"
    assert backend.calls_for("grant") == []
    assert backend.effects == 0


def test_revoke_waits_for_a_running_grant_job(
    requester, billing, backend, django_capture_on_commit_callbacks
):
    ent = auto_entitlement(billing, requester)
    grant = request_grant(requester, ent, django_capture_on_commit_callbacks, execute=False)
    grant_job = job_of(grant)
    SyncJob.objects.filter(pk=grant_job.pk).update(
        status="running", attempts=1, started_at=timezone.now()
    )
    with django_capture_on_commit_callbacks(execute=False):
        services.grant_revoke(actor=requester, grant_id=grant.pk, reason="not needed")
    revoke_job = job_of(grant, "revoke")
    assert outbox.sync_job_run(job_id=revoke_job.pk) == "blocked"
    assert backend.calls_for("revoke") == []


@pytest.fixture
def manual_service(org):
    return Service.objects.create(
        slug="ldap",
        name="LDAP",
        owner_team=org["search"],
        connector="manual",
        connector_config={"group": "ldap-admins", "instructions": "Add to the LDAP group."},
    )


def test_manual_connector_waits_for_a_person(
    requester, manual_service, django_capture_on_commit_callbacks
):
    from tests.conftest import make_user

    ent = auto_entitlement(manual_service, requester)
    grant = request_grant(requester, ent, django_capture_on_commit_callbacks)
    job = job_of(grant)
    task = ManualTask.objects.get(job=job)
    assert (job.status, grant.status, task.status, task.group) == (
        "waiting_manual",
        "pending",
        "open",
        "ldap-admins",
    )
    assert task.title == "Grant ldap/read to requester@example.com"
    assert outbox.sync_job_run(job_id=job.pk) == "noop"  # redelivery: no second task
    assert ManualTask.objects.count() == 1

    outsider = make_user("outsider@example.com")
    with pytest.raises(NotFound):
        outbox.manual_task_answer(actor=outsider, task_id=task.pk, outcome="done")
    member = make_user("ldap@example.com", roles=["ldap-admins"])
    with pytest.raises(ValidationError):
        outbox.manual_task_answer(actor=member, task_id=task.pk, outcome="cannot", note="")
    task.refresh_from_db()
    assert task.status == "open"

    outbox.manual_task_answer(actor=member, task_id=task.pk, outcome="done", note="added")
    job.refresh_from_db()
    grant.refresh_from_db()
    task.refresh_from_db()
    assert (task.status, job.status, grant.status) == ("done", "done", "active")
    with pytest.raises(Conflict):
        outbox.manual_task_answer(actor=member, task_id=task.pk, outcome="done")


def test_manual_cannot_fails_the_job(
    requester, admin, manual_service, django_capture_on_commit_callbacks
):
    from tests.conftest import make_user

    ent = auto_entitlement(manual_service, requester)
    grant = request_grant(requester, ent, django_capture_on_commit_callbacks)
    task = ManualTask.objects.get(job__grant=grant)
    member = make_user("ldap@example.com", roles=["ldap-admins"])
    with django_capture_on_commit_callbacks(execute=True):
        outbox.manual_task_answer(
            actor=member, task_id=task.pk, outcome="cannot", note="no such LDAP group"
        )
    grant.refresh_from_db()
    job = job_of(grant)
    assert (job.status, grant.status) == ("failed", "failed")
    assert job.last_error == "cannot be done: no such LDAP group"
    assert len([m for m in mail.outbox if "Provisioning failed" in m.subject]) == 1


def test_service_save_validates_the_connector_config(admin, org):
    with pytest.raises(ValidationError) as err:
        services.service_create(
            actor=admin,
            slug="db",
            name="DB",
            owner_team=org["search"],
            connector="postgres",
            connector_config={"dsn": "postgres://u:pw@h/db"},
        )
    assert err.value.field == "connector_config"
    with pytest.raises(ValidationError) as err:
        services.service_create(
            actor=admin, slug="db", name="DB", owner_team=org["search"], connector="nope"
        )
    assert err.value.field == "connector"
    assert not Service.objects.filter(slug="db").exists()
    service = services.service_create(
        actor=admin,
        slug="db",
        name="DB",
        owner_team=org["search"],
        connector="postgres",
        connector_config={"dsn_env": "TOLLGATE_PG_TARGET_DSN", "roles": {"read": "db_read"}},
    )
    with pytest.raises(ValidationError):
        services.service_update(
            actor=admin, service=service, connector_config={"dsn_env": "DATABASE_URL"}
        )
    service.refresh_from_db()
    assert service.connector_config["dsn_env"] == "TOLLGATE_PG_TARGET_DSN"


def test_entitlement_connector_config_reaches_the_connector(
    requester, billing, backend, django_capture_on_commit_callbacks
):
    ent = auto_entitlement(billing, requester)
    ent.connector_config = {"role": "billing_read"}
    ent.save()
    grant = request_grant(requester, ent, django_capture_on_commit_callbacks)
    job = job_of(grant)
    _, ref = outbox.refs_for(job, None)
    assert dict(ref.config) == {"role": "billing_read"}
    assert Grant.objects.get(pk=grant.pk).status == "active"


def test_plain_entitlement_factory_still_works(billing):
    assert make_entitlement(billing, slug="write").connector_config == {}
