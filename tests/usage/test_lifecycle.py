"""The removal life cycle with an explicit clock (every service takes ``now``): detection,
notice period, removal through grant_revoke, used-again cancel, opt-out, restore."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from access.models import Grant, SyncJob
from audit.models import AuditEvent
from portal.core.actors import TEST, UNUSED_ACCESS, USAGE, SystemActor
from portal.core.errors import Conflict, NotPermitted, ValidationError
from tests.access.factories import make_entitlement, make_service
from tests.access.sync_support import actions_for, fake_service, fresh_fakes  # noqa: F401
from tests.usage.support import NOW, aged_grant, cover
from usage import services, tasks
from usage.models import PrincipalAlias, UnusedRemoval, UsageMappingRule

pytestmark = pytest.mark.django_db
NOTICE = timedelta(days=7)


@pytest.fixture
def svc(org):
    return make_service(org["search"], "warehouse")


@pytest.fixture
def read(svc):
    return make_entitlement(svc, "read")


@pytest.fixture
def unused(svc, read, requester):
    cover(svc, now=NOW + timedelta(days=40))  # fresh for the whole test clock
    return aged_grant(requester, read, last_used_days=120)


def daily(now, capture=None):
    if capture is None:
        return services.unused_daily(now=now)
    with capture(execute=True):
        return services.unused_daily(now=now)


def the_removal(grant) -> UnusedRemoval:
    return UnusedRemoval.objects.get(grant=grant, status__in=("detected", "scheduled", "opted_out"))


def test_detection_schedules_and_notifies_holder_and_owner(
    unused, requester, service_owner, django_capture_on_commit_callbacks
):
    counts = daily(NOW, django_capture_on_commit_callbacks)
    assert counts["detected"] == 1
    removal = the_removal(unused)
    assert (removal.status, removal.remove_after, removal.window_days) == (
        "scheduled",
        NOW + NOTICE,
        90,
    )
    assert removal.last_used_at == NOW - timedelta(days=120)
    assert actions_for(removal) == ["unused.detected", "unused.schedule"]
    recipients = sorted(tuple(m.to) for m in mail.outbox)
    assert recipients == [(service_owner.email,), (requester.email,)]
    holder_mail = next(m for m in mail.outbox if m.to == [requester.email])
    assert "will be removed" in holder_mail.subject
    assert str(unused.entitlement) in holder_mail.body
    # the next run finds the open removal and creates nothing
    assert daily(NOW + timedelta(hours=1))["detected"] == 0
    assert UnusedRemoval.objects.count() == 1


def test_removed_only_after_the_notice_period_through_grant_revoke(
    unused, requester, django_capture_on_commit_callbacks
):
    daily(NOW)
    removal = the_removal(unused)
    assert daily(NOW + NOTICE - timedelta(seconds=1))["removed"] == 0
    unused.refresh_from_db()
    assert unused.status == "active"
    mail.outbox.clear()
    counts = daily(NOW + NOTICE, django_capture_on_commit_callbacks)
    assert counts["removed"] == 1
    removal.refresh_from_db()
    unused.refresh_from_db()
    assert (removal.status, removal.removed_at) == ("removed", NOW + NOTICE)
    assert unused.status == "revoked"  # no connector: revoked at once
    assert f"removal #{removal.pk}" in unused.revoke_reason
    assert actions_for(removal)[-1] == "unused.remove"
    assert "grant.revoke" in actions_for(unused)
    assert any(m.to == [requester.email] and "were removed" in m.subject for m in mail.outbox)


def test_removal_of_a_connector_grant_goes_through_the_outbox(org, requester, fresh_fakes):  # noqa: F811
    billing = fake_service(org["search"], "billing")
    ent = make_entitlement(billing, "read")
    cover(billing, now=NOW + timedelta(days=40))
    grant = aged_grant(requester, ent, last_used_days=None)
    daily(NOW)
    daily(NOW + NOTICE)
    grant.refresh_from_db()
    assert grant.status in ("revoking", "revoked")
    job = SyncJob.objects.get(grant=grant, operation="revoke")
    assert job.origin == "revoke"


def test_used_again_before_removal_cancels_the_schedule(unused):
    from access.services import grants_record_use

    daily(NOW)
    removal = the_removal(unused)
    grants_record_use(uses={unused.pk: NOW + timedelta(days=2)}, source="test")
    counts = daily(NOW + timedelta(days=3))
    assert counts["cancelled_used_again"] == 1
    removal.refresh_from_db()
    assert removal.status == "cancelled"
    assert removal.closed_reason.startswith("used again on")
    assert daily(NOW + NOTICE)["removed"] == 0
    unused.refresh_from_db()
    assert unused.status == "active"


def test_late_old_evidence_does_not_cancel(unused):
    """An import of events still older than the window moves last use but does not cancel."""
    from access.services import grants_record_use

    daily(NOW)
    grants_record_use(uses={unused.pk: NOW - timedelta(days=100)}, source="test")
    assert daily(NOW + timedelta(days=1))["cancelled_used_again"] == 0
    assert the_removal(unused).status == "scheduled"


def test_grant_revoked_another_way_cancels(unused, requester):
    from access.services import grant_revoke

    daily(NOW)
    removal = the_removal(unused)
    grant_revoke(actor=requester, grant_id=unused.pk, reason="no longer needed")
    counts = daily(NOW + NOTICE)
    assert (counts["removed"], counts["cancelled_used_again"]) == (0, 1)
    removal.refresh_from_db()
    assert (removal.status, removal.closed_reason) == ("cancelled", "grant is revoked")


def test_stale_data_at_due_time_holds_the_removal(svc, read, requester):
    cover(svc, now=NOW)  # fresh at NOW, stale two days later
    grant = aged_grant(requester, read, last_used_days=None)
    daily(NOW)
    counts = daily(NOW + NOTICE)
    assert (counts["removed"], counts["held"]) == (0, 1)
    assert the_removal(grant).status == "scheduled"
    cover(svc, now=NOW + NOTICE + timedelta(hours=2))
    assert daily(NOW + NOTICE + timedelta(hours=2))["removed"] == 1


def test_grant_ending_before_removal_is_not_scheduled(svc, read, requester):
    cover(svc)
    aged_grant(requester, read, last_used_days=None, ends_in_days=5)
    assert daily(NOW)["detected"] == 0


# --- opt-out ----------------------------------------------------------------------------
@pytest.mark.parametrize("who", ["requester", "manager", "service_owner"])
def test_holder_manager_and_owner_may_opt_out(request, unused, who):
    daily(NOW)
    removal = the_removal(unused)
    actor = request.getfixturevalue(who)
    services.removal_opt_out(
        actor=actor, removal_id=removal.pk, reason="quarter-end jobs", days=30, now=NOW
    )
    removal.refresh_from_db()
    assert (removal.status, removal.opted_out_by, removal.opt_out_until) == (
        "opted_out",
        actor,
        NOW + timedelta(days=30),
    )
    assert actions_for(removal)[-1] == "unused.opt_out"
    assert daily(NOW + NOTICE)["removed"] == 0
    unused.refresh_from_db()
    assert unused.status == "active"


@pytest.mark.parametrize("who", ["other_team_user", "admin", "security", "auditor"])
def test_others_may_not_opt_out_and_nothing_changes(request, unused, who):
    daily(NOW)
    removal = the_removal(unused)
    events = AuditEvent.objects.count()
    with pytest.raises(NotPermitted):
        services.removal_opt_out(
            actor=request.getfixturevalue(who),
            removal_id=removal.pk,
            reason="I want it kept",
            days=30,
            now=NOW,
        )
    removal.refresh_from_db()
    assert removal.status == "scheduled"
    assert AuditEvent.objects.count() == events


def test_opt_out_is_bounded_and_needs_a_reason(settings, unused, requester):
    daily(NOW)
    removal = the_removal(unused)
    with pytest.raises(ValidationError, match="1 to 90 days"):
        services.removal_opt_out(
            actor=requester, removal_id=removal.pk, reason="keep it please", days=91, now=NOW
        )
    with pytest.raises(ValidationError, match="say why"):
        services.removal_opt_out(actor=requester, removal_id=removal.pk, reason=" ", days=5)
    removal.refresh_from_db()
    assert removal.status == "scheduled"


def test_opt_out_ends_and_the_grant_is_evaluated_again(unused, requester):
    daily(NOW)
    first = the_removal(unused)
    services.removal_opt_out(
        actor=requester, removal_id=first.pk, reason="on-call rotation", days=10, now=NOW
    )
    assert daily(NOW + timedelta(days=10) - timedelta(seconds=1))["opt_outs_ended"] == 0
    counts = daily(NOW + timedelta(days=10))
    assert (counts["opt_outs_ended"], counts["detected"]) == (1, 1)
    first.refresh_from_db()
    assert first.status == "opt_out_ended"
    second = the_removal(unused)
    assert second.pk != first.pk
    assert second.remove_after == NOW + timedelta(days=10) + NOTICE


def test_opt_out_after_removal_is_refused(unused, requester):
    daily(NOW)
    daily(NOW + NOTICE)
    removal = UnusedRemoval.objects.get(grant=unused)
    with pytest.raises(Conflict):
        services.removal_opt_out(
            actor=requester, removal_id=removal.pk, reason="too late now", days=5, now=NOW
        )


# --- restore ----------------------------------------------------------------------------
@pytest.fixture
def removed(unused):
    daily(NOW)
    daily(NOW + NOTICE)
    return UnusedRemoval.objects.get(grant=unused, status="removed")


def test_holder_restores_removed_access(removed, unused, requester):
    services.removal_restore(
        actor=requester, removal_id=removed.pk, reason="needed for audit", now=NOW + NOTICE
    )
    removed.refresh_from_db()
    new = removed.restored_grant
    assert removed.status == "restored"
    assert (new.principal, new.entitlement, new.status) == (
        requester,
        unused.entitlement,
        "active",  # no connector: active at once
    )
    assert new.ends_at == unused.ends_at  # the original end date bound
    assert new.pk != unused.pk
    assert "restored from grant" in new.reason
    assert actions_for(removed)[-1] == "unused.restore"
    created = AuditEvent.objects.get(action="grant.created", target_id=str(new.pk))
    assert created.after["restored_from"] == unused.pk
    with pytest.raises(Conflict):  # once only
        services.removal_restore(
            actor=requester, removal_id=removed.pk, reason="again", now=NOW + NOTICE
        )


@pytest.mark.parametrize("who", ["manager", "service_owner", "admin"])
def test_manager_owner_admin_restore(request, removed, who):
    services.removal_restore(
        actor=request.getfixturevalue(who), removal_id=removed.pk, reason="back", now=NOW + NOTICE
    )
    removed.refresh_from_db()
    assert removed.status == "restored"


def test_stranger_may_not_restore_and_nothing_changes(removed, other_team_user):
    grants = Grant.objects.count()
    with pytest.raises(NotPermitted):
        services.removal_restore(
            actor=other_team_user, removal_id=removed.pk, reason="mine now", now=NOW + NOTICE
        )
    removed.refresh_from_db()
    assert removed.status == "removed"
    assert Grant.objects.count() == grants


def test_restore_window_is_bounded(removed, requester):
    with pytest.raises(ValidationError, match="more than 30 days ago"):
        services.removal_restore(
            actor=requester,
            removal_id=removed.pk,
            reason="late",
            now=NOW + NOTICE + timedelta(days=30, seconds=1),
        )


def test_restore_of_a_connector_grant_provisions_through_the_outbox(
    org,
    requester,
    fresh_fakes,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    billing = fake_service(org["search"], "billing")
    ent = make_entitlement(billing, "read")
    cover(billing, now=NOW + timedelta(days=40))
    grant = aged_grant(requester, ent, last_used_days=None)
    daily(NOW)
    daily(NOW + NOTICE)  # the revoke job is written, its task not yet run
    grant.refresh_from_db()
    assert grant.status == "revoking"
    removal = UnusedRemoval.objects.get(grant=grant)
    with pytest.raises(Conflict, match="not revoked"):  # still being removed downstream
        services.removal_restore(
            actor=requester, removal_id=removal.pk, reason="back please", now=NOW + NOTICE
        )
    with django_capture_on_commit_callbacks(execute=True):
        services.removals_remove_due(now=NOW + NOTICE)  # nothing due; commit runs the job
        from access.sync import outbox

        outbox.enqueue_job(SyncJob.objects.get(grant=grant, operation="revoke").pk)
    grant.refresh_from_db()
    assert grant.status == "revoked"
    services.removal_restore(
        actor=requester, removal_id=removal.pk, reason="back please", now=NOW + NOTICE
    )
    removal.refresh_from_db()
    assert removal.restored_grant.status in ("pending", "active")
    assert SyncJob.objects.filter(grant=removal.restored_grant, operation="grant").exists()


# --- the beat task ----------------------------------------------------------------------
def test_daily_task_runs_detection_now(svc, read, requester):
    now = timezone.now()
    cover(svc, now=now)
    grant = aged_grant(requester, read, last_used_days=None, now=now)
    tasks.unused_daily.delay()
    assert the_removal(grant).status == "scheduled"


# --- system actors and strings ------------------------------------------------------------
@pytest.mark.parametrize("actor", [UNUSED_ACCESS, USAGE, TEST])
def test_no_system_actor_opts_out_or_restores(unused, actor):
    """Opting out and restoring speak for a person: no system actor is accepted."""
    daily(NOW)
    removal = the_removal(unused)
    events = AuditEvent.objects.count()
    with pytest.raises(NotPermitted):
        services.removal_opt_out(
            actor=actor, removal_id=removal.pk, reason="keep it please", days=30, now=NOW
        )
    with pytest.raises(NotPermitted):
        services.removal_restore(actor=actor, removal_id=removal.pk, reason="needed", now=NOW)
    removal.refresh_from_db()
    assert removal.status == "scheduled"
    assert AuditEvent.objects.count() == events


def test_a_string_actor_is_refused_for_opt_out_and_restore(unused):
    daily(NOW)
    removal = the_removal(unused)
    events = AuditEvent.objects.count()
    with pytest.raises(TypeError):
        services.removal_opt_out(
            actor="system:unused-access", removal_id=removal.pk, reason="keep it", days=3, now=NOW
        )
    with pytest.raises(TypeError):
        services.removal_restore(actor="admin", removal_id=removal.pk, reason="needed", now=NOW)
    removal.refresh_from_db()
    assert removal.status == "scheduled"
    assert AuditEvent.objects.count() == events


def test_the_daily_run_acts_as_the_unused_access_actor(unused):
    daily(NOW)
    removal = the_removal(unused)
    labels = set(
        AuditEvent.objects.filter(
            target_id=str(removal.pk), action__startswith="unused."
        ).values_list("actor_label", flat=True)
    )
    assert labels == {"system:unused-access"}


@pytest.mark.parametrize("actor", [USAGE, UNUSED_ACCESS, "system:usage"])
def test_mapping_rules_and_aliases_are_a_persons_job(read, requester, actor):
    error = NotPermitted if isinstance(actor, SystemActor) else TypeError
    with pytest.raises(error):
        services.rule_create(
            actor=actor, event_source="s3.amazonaws.com", event_name="Get*", entitlement=read
        )
    with pytest.raises(error):
        services.alias_create(actor=actor, external_id="arn:aws:iam::1:user/x", user=requester)
    assert not UsageMappingRule.objects.exists()
    assert not PrincipalAlias.objects.exists()
