"""Expiry and reminders, leavers, movers, break-glass and follow-up reviews."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from access.models import FollowUpReview, Grant, GrantReminder, Service, SyncJob
from access.sync import lifecycle
from accounts.models import TeamMove
from accounts.services import user_mark_leaver
from audit.models import AuditEvent
from connectors.fake import FakeConnector
from portal.core.errors import Conflict, NotFound, NotPermitted, ValidationError
from tests.access.factories import grant_directly, make_entitlement
from tests.access.sync_support import actions_for, fake_service, fresh_fakes  # noqa: F401
from tests.conftest import make_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_fakes")]


@pytest.fixture
def billing(org):
    return fake_service(org["search"], "billing")


@pytest.fixture
def plain(org):
    return Service.objects.create(slug="wiki", name="Wiki", owner_team=org["search"])


# --- Expiry ---------------------------------------------------------------------------
def test_expired_grant_is_revoked_through_the_outbox(
    tricky_now, requester, billing, django_capture_on_commit_callbacks
):
    backend = FakeConnector.backend("billing")
    backend.set_holder("requester@example.com", "read")
    grant = grant_directly(requester, make_entitlement(billing), days=1)
    Grant.objects.filter(pk=grant.pk).update(ends_at=timezone.now() - timedelta(minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        counts = lifecycle.grants_expiry_sweep()
    grant.refresh_from_db()
    job = SyncJob.objects.get(grant=grant)
    assert counts == {"expired": 1, "reminded": 0}
    assert (grant.status, job.operation, job.origin, job.status) == (
        "revoked",
        "revoke",
        "expiry",
        "done",
    )
    assert not backend.holds("requester@example.com", "read")
    assert actions_for(grant) == ["grant.expire", "grant.complete_revoke"]
    # A second sweep finds nothing.
    assert lifecycle.grants_expiry_sweep() == {"expired": 0, "reminded": 0}


@pytest.mark.sqlite
def test_expired_grant_without_connector_is_revoked_at_once(tricky_now, requester, plain):
    grant = grant_directly(requester, make_entitlement(plain), days=1)
    Grant.objects.filter(pk=grant.pk).update(ends_at=timezone.now() - timedelta(seconds=1))
    assert lifecycle.grants_expiry_sweep()["expired"] == 1
    grant.refresh_from_db()
    assert grant.status == "revoked"
    assert grant.revoke_reason.startswith("expired at ")
    assert SyncJob.objects.count() == 0


def test_reminders_seven_days_and_one_day_before_the_end_with_an_extend_link(
    tricky_now, requester, plain, django_capture_on_commit_callbacks
):
    ent = make_entitlement(plain)
    grant = grant_directly(requester, ent, days=6)
    with django_capture_on_commit_callbacks(execute=True):
        assert lifecycle.grants_expiry_sweep() == {"expired": 0, "reminded": 1}
        assert lifecycle.grants_expiry_sweep() == {"expired": 0, "reminded": 0}
    assert list(GrantReminder.objects.values_list("days_before", flat=True)) == [7]
    (message,) = mail.outbox
    assert message.to == ["requester@example.com"]
    assert message.subject == f"[Tollgate] Your access to {ent} ends in 7 days"
    assert f"/requests/new/?entitlement={ent.pk}" in message.body

    later = grant.ends_at - timedelta(hours=12)
    with django_capture_on_commit_callbacks(execute=True):
        assert lifecycle.grants_expiry_sweep(now=later) == {"expired": 0, "reminded": 1}
    assert sorted(GrantReminder.objects.values_list("days_before", flat=True)) == [1, 7]
    assert mail.outbox[-1].subject == f"[Tollgate] Your access to {ent} ends tomorrow"

    # An extension moves the end: the reminders start again for the new end date.
    Grant.objects.filter(pk=grant.pk).update(ends_at=grant.ends_at + timedelta(days=2))
    assert lifecycle.grants_expiry_sweep(now=later + timedelta(days=2))["reminded"] == 1


# --- Leavers --------------------------------------------------------------------------
def test_leaver_loses_every_grant_tokens_and_sessions_in_one_transaction(
    requester, admin, billing, plain, client, django_capture_on_commit_callbacks
):
    from tokens.models import ApiToken
    from tokens.services import api_token_create

    backend = FakeConnector.backend("billing")
    g1 = grant_directly(requester, make_entitlement(billing, slug="read"))
    g2 = grant_directly(requester, make_entitlement(billing, slug="write"), status="pending")
    g3 = grant_directly(requester, make_entitlement(plain, slug="edit"))
    backend.set_holder("requester@example.com", "read")
    api_token_create(actor=requester, user=requester, name="ci")
    client.force_login(requester)

    with django_capture_on_commit_callbacks(execute=True):
        user_mark_leaver(user=requester, actor=admin, reason="left")

    statuses = dict(Grant.objects.filter(principal=requester).values_list("pk", "status"))
    assert statuses == {g1.pk: "revoked", g2.pk: "revoked", g3.pk: "revoked"}
    assert sorted(SyncJob.objects.filter(origin="leaver").values_list("status", flat=True)) == [
        "done",
        "done",
    ]
    assert not backend.holds("requester@example.com", "read")
    assert ApiToken.objects.filter(user=requester, revoked_at__isnull=True).count() == 0
    assert client.get("/grants/").status_code == 302  # the session no longer authenticates


# --- Movers ---------------------------------------------------------------------------
def test_mover_grants_tied_to_the_old_team_go_to_the_new_manager(
    org, plain, security, django_capture_on_commit_callbacks
):
    new_lead = make_user("lead@example.com", team=org["search"], lead=True)
    mover = make_user("mover@example.com", team=org["payments"])
    stay = make_user("stay@example.com", team=org["search"])
    team_ent = make_entitlement(plain, slug="team-normal")
    old_ent = make_entitlement(plain, slug="payments-only")
    kept = grant_directly(mover, team_ent)
    tied = grant_directly(mover, old_ent)
    grant_directly(stay, team_ent)
    mover.team = org["search"]
    mover.manager = new_lead
    mover.save()
    TeamMove.objects.create(user=mover, from_team=org["payments"], to_team=org["search"])

    with django_capture_on_commit_callbacks(execute=True):
        assert lifecycle.movers_sweep() == 1
    assert lifecycle.movers_sweep() == 0  # idempotent
    item = FollowUpReview.objects.get()
    assert (item.kind, item.grant_id, item.reviewer_id) == ("mover", tied.pk, new_lead.pk)
    assert mail.outbox[-1].to == ["lead@example.com"]
    assert not FollowUpReview.objects.filter(grant=kept).exists()

    audit_before = AuditEvent.objects.count()
    with pytest.raises(NotFound):
        lifecycle.follow_up_answer(actor=mover, item_id=item.pk, decision="keep", note="mine")
    assert AuditEvent.objects.count() == audit_before
    lifecycle.follow_up_answer(actor=new_lead, item_id=item.pk, decision="revoke", note="not here")
    item.refresh_from_db()
    tied.refresh_from_db()
    assert (item.status, tied.status) == ("revoked", "revoked")
    with pytest.raises(Conflict):
        lifecycle.follow_up_answer(actor=new_lead, item_id=item.pk, decision="keep", note="x")


# --- Break-glass ----------------------------------------------------------------------
def test_break_glass_is_short_alerted_and_reviewed(
    requester, security, service_owner, billing, django_capture_on_commit_callbacks
):
    ent = make_entitlement(billing, slug="admin", risk="critical", allows_break_glass=True)
    with django_capture_on_commit_callbacks(execute=True):
        grant = lifecycle.grant_break_glass(
            actor=requester, entitlement_id=ent.pk, reason="prod incident INC-42", hours=2
        )
    grant.refresh_from_db()
    assert (grant.status, grant.break_glass) == ("active", True)
    assert timedelta(hours=1, minutes=59) < grant.ends_at - grant.starts_at <= timedelta(hours=2)
    assert FakeConnector.backend("billing").holds("requester@example.com", "admin")
    assert SyncJob.objects.get(grant=grant).origin == "break_glass"
    alert = next(m for m in mail.outbox if "BREAK-GLASS" in m.subject)
    assert alert.to == ["owner@example.com", "security@example.com"]
    item = FollowUpReview.objects.get(grant=grant)
    assert (item.kind, item.status, item.reviewer_id) == ("break_glass", "open", None)

    with pytest.raises(NotFound):  # the holder does not review their own emergency
        lifecycle.follow_up_answer(actor=requester, item_id=item.pk, decision="keep", note="ok")
    lifecycle.follow_up_answer(
        actor=security, item_id=item.pk, decision="keep", note="matches INC-42"
    )
    item.refresh_from_db()
    assert (item.status, item.answered_by_id) == ("kept", security.pk)


def test_break_glass_refusals_change_nothing(requester, billing):
    allowed = make_entitlement(billing, slug="admin", allows_break_glass=True)
    normal = make_entitlement(billing, slug="read")
    before = (Grant.objects.count(), AuditEvent.objects.count(), FollowUpReview.objects.count())
    with pytest.raises(NotPermitted):
        lifecycle.grant_break_glass(
            actor=requester, entitlement_id=normal.pk, reason="prod incident", hours=1
        )
    with pytest.raises(ValidationError):
        lifecycle.grant_break_glass(
            actor=requester, entitlement_id=allowed.pk, reason="prod incident", hours=5
        )
    with pytest.raises(ValidationError):
        lifecycle.grant_break_glass(actor=requester, entitlement_id=allowed.pk, reason="", hours=1)
    after = (Grant.objects.count(), AuditEvent.objects.count(), FollowUpReview.objects.count())
    assert after == before
