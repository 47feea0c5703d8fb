"""The beat sweep with a frozen clock: start, remind, escalate, deadline, close."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail

from access.models import Grant
from audit.models import AuditEvent
from reviews import services
from reviews.models import Campaign
from tests.reviews.support import T0, item_for, make_campaign

pytestmark = pytest.mark.django_db
DEADLINE = T0 + timedelta(days=14)


@pytest.fixture
def chain(manager, director):
    manager.manager = director
    manager.save(update_fields=["manager"])
    return director


def sweep(capture, now):
    with capture(execute=True):
        return services.reviews_sweep(now=now)


def test_draft_starts_when_due(security, held, billing, django_capture_on_commit_callbacks):
    campaign = make_campaign(security, service=billing)
    assert sweep(django_capture_on_commit_callbacks, T0 - timedelta(minutes=1))["started"] == 0
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"
    assert sweep(django_capture_on_commit_callbacks, T0)["started"] == 1
    assert Campaign.objects.get(pk=campaign.pk).status == "active"
    assert campaign.items.count() == 4


def test_reminders_then_escalation_to_the_reviewers_manager(
    security, requester, manager, chain, held, billing, django_capture_on_commit_callbacks
):
    campaign = make_campaign(security, service=billing)
    sweep(django_capture_on_commit_callbacks, T0)
    mail.outbox.clear()
    # Too early for anything.
    assert sweep(django_capture_on_commit_callbacks, DEADLINE - timedelta(days=4))["reminded"] == 0
    counts = sweep(django_capture_on_commit_callbacks, DEADLINE - timedelta(days=3))
    assert (counts["reminded"], counts["escalated"]) == (4, 0)
    item = item_for(campaign, requester)
    assert item.reminded_at == DEADLINE - timedelta(days=3)
    assert sorted(m.to[0] for m in mail.outbox) == ["director@example.com", "manager@example.com"]
    # Reminded once only.
    assert sweep(django_capture_on_commit_callbacks, DEADLINE - timedelta(days=2))["reminded"] == 0
    counts = sweep(django_capture_on_commit_callbacks, DEADLINE - timedelta(days=1))
    assert counts["escalated"] == 4
    item.refresh_from_db()
    assert (item.escalated_to, item.escalated_at) == (chain, DEADLINE - timedelta(days=1))
    # The director may now answer it.
    services.review_item_decide(actor=chain, item_id=item.pk, decision="keep")
    assert AuditEvent.objects.filter(action="review.item_escalated").count() == 4
    assert AuditEvent.objects.filter(action="review.item_reminded").count() == 4


def test_escalation_never_lands_on_the_principal(
    security, manager, chain, held, billing, django_capture_on_commit_callbacks
):
    campaign = make_campaign(security, service=billing)
    sweep(django_capture_on_commit_callbacks, T0)
    own = item_for(campaign, manager)  # reviewed by the director now (manager's manager)
    assert own.reviewer == chain
    sweep(django_capture_on_commit_callbacks, DEADLINE - timedelta(hours=1))
    own.refresh_from_db()
    assert (own.escalated_to, own.to_security) == (None, True)  # director has no manager


def test_deadline_revokes_unanswered_items_and_closes(
    security, requester, peer, manager, held, billing, backend, django_capture_on_commit_callbacks
):
    campaign = make_campaign(security, service=billing, action="revoke")
    sweep(django_capture_on_commit_callbacks, T0)
    services.review_item_decide(
        actor=manager, item_id=item_for(campaign, peer).pk, decision="keep", now=T0
    )
    counts = sweep(django_capture_on_commit_callbacks, DEADLINE)
    assert (counts["deadline"], counts["closed"]) == (3, 1)
    campaign.refresh_from_db()
    assert (campaign.status, campaign.closed_at) == ("closed", DEADLINE)
    assert len(campaign.report_sha256) == 64
    assert item_for(campaign, requester).status == "revoked"
    assert item_for(campaign, peer).status == "kept"
    assert Grant.objects.get(pk=held[requester.email].pk).status == "revoked"
    assert Grant.objects.get(pk=held[peer.email].pk).status == "active"
    assert not backend.holds("requester@example.com", "read")
    assert backend.holds("peer@example.com", "read")
    assert AuditEvent.objects.filter(action="review.item_deadline_revoke").count() == 3
    # A closed campaign is left alone.
    assert sweep(django_capture_on_commit_callbacks, DEADLINE + timedelta(days=1)) == {
        "started": 0,
        "reminded": 0,
        "escalated": 0,
        "deadline": 0,
        "closed": 0,
    }


def test_deadline_escalates_instead_when_configured(
    security, requester, held, billing, backend, django_capture_on_commit_callbacks
):
    campaign = make_campaign(security, service=billing, action="escalate")
    sweep(django_capture_on_commit_callbacks, T0)
    counts = sweep(django_capture_on_commit_callbacks, DEADLINE)
    assert (counts["deadline"], counts["closed"]) == (4, 1)
    assert set(campaign.items.values_list("status", flat=True)) == {"escalated"}
    assert Grant.objects.get(pk=held[requester.email].pk).status == "active"
    assert backend.holds("requester@example.com", "read")
    assert AuditEvent.objects.filter(action="grant.revoke").count() == 0


def test_beat_task_runs_the_sweep(security, held, billing, django_capture_on_commit_callbacks):
    from reviews.tasks import reviews_sweep

    campaign = make_campaign(security, service=billing)
    services.campaign_start(actor=security, campaign_id=campaign.pk, now=T0)
    # The real clock is past the frozen deadline: the task closes the campaign.
    with django_capture_on_commit_callbacks(execute=True):
        reviews_sweep.delay()
    assert Campaign.objects.get(pk=campaign.pk).status == "closed"
