"""Creating and starting campaigns: who may, what is snapshotted, who reviews what."""

from __future__ import annotations

from datetime import timedelta

import pytest

from audit.models import AuditEvent
from portal.core.actors import REVIEWS, SCIM
from portal.core.errors import Conflict, NotPermitted, ValidationError
from reviews import services
from reviews.models import Campaign, ReviewItem
from tests.access.factories import grant_directly, make_entitlement, make_service
from tests.reviews.support import T0, item_for, make_campaign, state

pytestmark = pytest.mark.django_db


@pytest.mark.sqlite
def test_security_creates_a_draft_campaign_audited(security, billing):
    campaign = make_campaign(security, service=billing)
    assert (campaign.status, campaign.scope_service, campaign.created_by) == (
        "draft",
        billing,
        security,
    )
    event = AuditEvent.objects.get(action="review.campaign_created")
    assert (event.actor_id, event.target_id) == (security.pk, str(campaign.pk))
    assert event.after["service"] == "billing"
    assert event.after["deadline_action"] == "revoke"


def test_an_engineer_may_not_create_a_campaign(requester, billing):
    before = state()
    with pytest.raises(NotPermitted):
        make_campaign(requester, service=billing)
    assert state() == before


def test_deadline_must_follow_start(admin, billing):
    before = state()
    with pytest.raises(ValidationError) as exc:
        make_campaign(admin, service=billing, deadline=T0 - timedelta(hours=1))
    assert exc.value.field == "deadline"
    assert state() == before


def test_start_snapshots_active_grants_in_scope_with_manager_reviewers(
    security, requester, peer, manager, service_owner, held, read, billing, org
):
    other_service = make_service(org["other"], slug="wiki")
    grant_directly(requester, make_entitlement(other_service))  # out of scope
    held[peer.email].status = "revoked"
    held[peer.email].save(update_fields=["status"])  # not active: not reviewed
    campaign = make_campaign(security, service=billing)

    services.campaign_start(actor=security, campaign_id=campaign.pk, now=T0)

    campaign.refresh_from_db()
    assert (campaign.status, campaign.started_at) == ("active", T0)
    items = {i.principal.email: i for i in campaign.items.select_related("principal")}
    assert sorted(items) == ["manager@example.com", "owner@example.com", "requester@example.com"]
    assert items["requester@example.com"].reviewer == manager
    assert items["requester@example.com"].held_since == held[requester.email].starts_at
    # Nobody above the manager or the owner: their own access falls to security.
    assert (items["manager@example.com"].reviewer, items["manager@example.com"].to_security) == (
        None,
        True,
    )
    assert items["owner@example.com"].to_security is True
    event = AuditEvent.objects.get(action="review.campaign_start")
    assert (event.before, event.after) == ({"status": "draft"}, {"status": "active", "items": 3})


def test_owner_rule_assigns_the_owner_team_but_never_its_own_members_access(
    security, requester, service_owner, manager, held, billing, org
):
    campaign = make_campaign(security, service=billing, reviewer_rule="owner")
    services.campaign_start(actor=security, campaign_id=campaign.pk, now=T0)
    assert item_for(campaign, requester).reviewer_team == org["search"]
    own = item_for(campaign, service_owner)
    assert (own.reviewer_team, own.reviewer, own.to_security) == (None, None, True)


def test_team_and_risk_scopes(security, requester, peer, service_owner, held, org, read):
    by_team = make_campaign(security, scope="team", team=org["payments"], name="payments")
    services.campaign_start(actor=security, campaign_id=by_team.pk, now=T0)
    assert sorted(by_team.items.values_list("principal__email", flat=True)) == [
        "manager@example.com",
        "peer@example.com",
        "requester@example.com",
    ]
    low = make_campaign(security, scope="risk", risk="low", name="low")
    services.campaign_start(actor=security, campaign_id=low.pk, now=T0)
    assert low.items.count() == 0
    high = make_campaign(security, scope="risk", risk="high", name="high")
    services.campaign_start(actor=security, campaign_id=high.pk, now=T0)
    assert high.items.count() == 4


def test_starting_twice_is_a_conflict(security, held, billing):
    campaign = make_campaign(security, service=billing)
    services.campaign_start(actor=security, campaign_id=campaign.pk, now=T0)
    before = state()
    with pytest.raises(Conflict):
        services.campaign_start(actor=security, campaign_id=campaign.pk, now=T0)
    assert state() == before
    assert ReviewItem.objects.filter(campaign=campaign).count() == 4


def test_an_engineer_may_not_start_a_campaign(security, requester, held, billing):
    campaign = make_campaign(security, service=billing)
    before = state()
    with pytest.raises(NotPermitted):
        services.campaign_start(actor=requester, campaign_id=campaign.pk, now=T0)
    assert state() == before
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"


def test_campaign_pages_create_and_start(security, held, billing, client):
    from django.urls import reverse

    from tests.conftest import PASSWORD

    assert client.login(email=security.email, password=PASSWORD)
    response = client.post(
        reverse("reviews:campaign-create"),
        {
            "name": "Billing Q1",
            "scope": "service",
            "scope_service": billing.pk,
            "reviewer_rule": "owner",
            "starts_at": "2026-03-02T09:00",
            "deadline": "2026-03-16T09:00",
            "deadline_action": "escalate",
        },
    )
    campaign = Campaign.objects.get(name="Billing Q1")
    assert response.status_code == 302
    assert (campaign.reviewer_rule, campaign.deadline_action, campaign.status) == (
        "owner",
        "escalate",
        "draft",
    )
    response = client.post(reverse("reviews:campaign-start", args=[campaign.pk]))
    assert response.status_code == 302
    assert Campaign.objects.get(pk=campaign.pk).status == "active"
    page = client.get(reverse("reviews:campaign-detail", args=[campaign.pk]))
    assert page.context["progress"]["overall"] == {
        "total": 4,
        "done": 0,
        "open": 4,
        "kept": 0,
        "revoked": 0,
        "escalated": 0,
        "percent": 0,
    }
    listing = client.get(reverse("reviews:campaign-list"))
    assert [c.pk for c in listing.context["campaigns"]] == [campaign.pk]


def test_only_the_review_scheduler_starts_a_campaign_as_a_system_actor(security, held, billing):
    campaign = make_campaign(security, service=billing)
    before = state()
    with pytest.raises(NotPermitted):
        services.campaign_start(actor=SCIM, campaign_id=campaign.pk, now=T0)
    with pytest.raises(TypeError):
        services.campaign_start(actor="system:reviews", campaign_id=campaign.pk, now=T0)
    assert state() == before
    services.campaign_start(actor=REVIEWS, campaign_id=campaign.pk, now=T0)
    assert Campaign.objects.get(pk=campaign.pk).status == "active"
