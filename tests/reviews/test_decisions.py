"""Reviewers keep or revoke; revocations reach the connector through the outbox."""

from __future__ import annotations

import pytest
from django.urls import reverse

from access.models import Grant, SyncJob
from audit.models import AuditEvent
from portal.core.errors import NotPermitted, ValidationError
from reviews import services
from tests.conftest import PASSWORD
from tests.reviews.support import T0, item_for, make_campaign, state

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign(security, held, billing):
    campaign = make_campaign(security, service=billing)
    services.campaign_start(actor=security, campaign_id=campaign.pk, now=T0)
    return campaign


def login(client, user):
    assert client.login(email=user.email, password=PASSWORD)
    return client


def test_manager_keeps_an_item(campaign, manager, requester, held):
    item = services.review_item_decide(
        actor=manager, item_id=item_for(campaign, requester).pk, decision="keep", now=T0
    )
    assert (item.status, item.decided_by, item.decided_at) == ("kept", manager, T0)
    assert Grant.objects.get(pk=held[requester.email].pk).status == "active"
    event = AuditEvent.objects.get(action="review.item_keep")
    assert (event.actor_id, event.after["status"]) == (manager.pk, "kept")


def test_revocation_reaches_the_connector(
    campaign, manager, requester, held, backend, django_capture_on_commit_callbacks
):
    item = item_for(campaign, requester)
    with django_capture_on_commit_callbacks(execute=True):
        services.review_item_decide(
            actor=manager, item_id=item.pk, decision="revoke", reason="left the project"
        )
    grant = Grant.objects.get(pk=held[requester.email].pk)
    job = SyncJob.objects.get(grant=grant, operation="revoke")
    assert (grant.status, job.status) == ("revoked", "done")
    assert not backend.holds("requester@example.com", "read")
    assert backend.holds("peer@example.com", "read")
    assert grant.revoke_reason == (
        f"access review #{campaign.pk} by manager@example.com: left the project"
    )
    revoke_event = AuditEvent.objects.get(action="grant.revoke", target_id=str(grant.pk))
    assert revoke_event.actor_label == "system:reviews"
    decision = AuditEvent.objects.get(action="review.item_revoke", target_id=str(item.pk))
    assert decision.actor_label == "manager@example.com"


def test_revoke_needs_a_reason(campaign, manager, requester):
    before = state()
    with pytest.raises(ValidationError):
        services.review_item_decide(
            actor=manager, item_id=item_for(campaign, requester).pk, decision="revoke"
        )
    assert state() == before


def test_self_review_is_refused(campaign, security, held, client):
    # security holds billing/read too; having no manager, their item falls to security.
    from tests.access.factories import grant_directly

    assert held  # the campaign was started before security held anything:
    assert not campaign.items.filter(principal=security).exists()
    grant_directly(security, campaign.items.first().entitlement)
    second = make_campaign(security, service=campaign.scope_service, name="second")
    services.campaign_start(actor=security, campaign_id=second.pk, now=T0)
    own = item_for(second, security)
    assert own.to_security is True
    before = state()
    with pytest.raises(NotPermitted, match="their own access"):
        services.review_item_decide(actor=security, item_id=own.pk, decision="keep")
    response = login(client, security).post(
        reverse("reviews:decide"), {"items": [own.pk], "decision": "keep"}
    )
    assert response.status_code == 404
    assert state() == before


def test_the_wrong_person_may_not_answer(campaign, requester, other_team_user, client):
    item = item_for(campaign, requester)
    before = state()
    with pytest.raises(NotPermitted):
        services.review_item_decide(actor=other_team_user, item_id=item.pk, decision="keep")
    client = login(client, other_team_user)
    assert (
        client.post(reverse("reviews:decide"), {"items": [item.pk], "decision": "keep"}).status_code
        == 404
    )
    assert client.get(reverse("reviews:campaign-detail", args=[campaign.pk])).status_code == 404
    assert client.get(reverse("reviews:campaign-create")).status_code == 403
    assert state() == before


@pytest.mark.sqlite
def test_reviewer_page_lists_who_what_since_last_used_and_peers(
    campaign, manager, requester, peer, client
):
    response = login(client, manager).get(reverse("reviews:mine"))
    assert response.status_code == 200
    rows = {r["item"].principal.email: r for r in response.context["rows"]}
    assert sorted(rows) == ["peer@example.com", "requester@example.com"]
    assert [p.email for p in rows["requester@example.com"]["peers"]] == [
        "manager@example.com",
        "peer@example.com",
    ]
    body = response.content.decode()
    assert "requester@example.com" in body
    assert "never seen" in body


def test_bulk_decisions_from_the_page(
    campaign, manager, requester, peer, held, client, django_capture_on_commit_callbacks, backend
):
    ids = [item_for(campaign, requester).pk, item_for(campaign, peer).pk]
    with django_capture_on_commit_callbacks(execute=True):
        response = login(client, manager).post(
            reverse("reviews:decide"), {"items": ids, "decision": "revoke", "reason": "reorg"}
        )
    assert response.status_code == 302
    assert list(campaign.items.filter(pk__in=ids).values_list("status", flat=True)) == [
        "revoked",
        "revoked",
    ]
    assert not backend.holds("requester@example.com", "read")
    assert not backend.holds("peer@example.com", "read")
    assert AuditEvent.objects.filter(action="review.item_revoke").count() == 2


def test_bulk_with_a_foreign_item_decides_nothing(
    campaign, manager, requester, service_owner, client
):
    ids = [item_for(campaign, requester).pk, item_for(campaign, service_owner).pk]
    before = state()
    response = login(client, manager).post(
        reverse("reviews:decide"), {"items": ids, "decision": "keep"}
    )
    assert response.status_code == 404
    assert state() == before


def test_bulk_service_is_all_or_nothing(campaign, manager, requester, peer):
    first = item_for(campaign, requester)
    services.review_item_decide(actor=manager, item_id=first.pk, decision="keep")
    before = state()
    from portal.core.errors import Conflict

    with pytest.raises(Conflict):
        services.review_items_decide(
            actor=manager, item_ids=[item_for(campaign, peer).pk, first.pk], decision="keep"
        )
    assert state() == before
