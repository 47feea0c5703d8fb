"""My grants, grant page, give-up (A5) and delegations (A3)."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from access import services
from access.models import Delegation, Grant
from audit.models import AuditEvent

from .factories import make_entitlement, make_policy, make_service

pytestmark = pytest.mark.django_db


def text(response) -> str:
    body = re.sub(r"<[^>]+>", " ", response.content.decode())
    return html.unescape(re.sub(r"\s+", " ", body).strip())


@pytest.fixture
def granted(requester, manager, org):
    service = make_service(org["search"], slug="search-index")
    ent = make_entitlement(service, slug="read", policy=make_policy("mgr", [("manager", 1)]))
    req = services.access_request_submit(
        actor=requester, principal=requester, entitlement=ent, justification="x", duration_days=10
    )
    services.access_request_approve(actor=manager, request_id=req.pk, reason="ok")
    return Grant.objects.get(request=req)


@pytest.mark.sqlite
def test_my_grants_lists_active_with_end_and_gives_up(client, requester, granted):
    client.force_login(requester)
    response = client.get(reverse("access:grant-list"))
    page = text(response)
    ends = timezone.localtime(granted.ends_at).strftime("%Y-%m-%d %H:%M")
    assert (
        f"Search Index · Read Active {granted.starts_at:%Y-%m-%d} {ends} request #{granted.request_id}"
        in page
    )
    revoke = client.post(
        reverse("access:grant-revoke", args=[granted.pk]), {"reason": "done with it"}
    )
    assert revoke["Location"] == reverse("access:grant-list")
    granted.refresh_from_db()
    assert (granted.status, granted.revoke_reason) == (Grant.Status.REVOKED, "done with it")
    after = text(client.get(reverse("access:grant-list")))
    assert "Access to search-index/read revoked." in after
    assert "You hold no access right now." in after
    ended = text(client.get(reverse("access:grant-list"), {"ended": "1"}))
    assert "Search Index · Read Revoked" in ended


def test_give_up_without_reason_changes_nothing(client, requester, granted):
    client.force_login(requester)
    events = AuditEvent.objects.count()
    response = client.post(reverse("access:grant-revoke", args=[granted.pk]), {"reason": ""})
    assert response["Location"] == reverse("access:grant-detail", args=[granted.pk])
    granted.refresh_from_db()
    assert granted.status == Grant.Status.ACTIVE
    assert AuditEvent.objects.count() == events


def test_grant_detail_shows_why_and_who_approved(client, requester, granted):
    client.force_login(requester)
    page = text(client.get(reverse("access:grant-detail", args=[granted.pk])))
    assert f"Grant #{granted.pk} Active" in page
    assert f"Why request #{granted.request_id} ( request #{granted.request_id} )" in page
    assert "Approved by manager@example.com" in page
    assert "Give up this access" in page
    assert "A grant was created by manager@example.com" in page
    assert (
        "Grant transition: activate by manager@example.com “no connector: active at once”" in page
    )


def test_another_teams_grant_is_404_and_unchanged(client, other_team_user, granted):
    client.force_login(other_team_user)
    assert client.get(reverse("access:grant-detail", args=[granted.pk])).status_code == 404
    assert (
        client.post(
            reverse("access:grant-revoke", args=[granted.pk]), {"reason": "mine now"}
        ).status_code
        == 404
    )
    granted.refresh_from_db()
    assert granted.status == Grant.Status.ACTIVE
    assert "Search Index" not in text(client.get(reverse("access:grant-list")))


def test_manager_sees_a_reports_grant_but_may_not_revoke_it(client, manager, granted):
    client.force_login(manager)
    page = text(client.get(reverse("access:grant-detail", args=[granted.pk])))
    assert "Give up" not in page and "Revoke this access" not in page
    response = client.post(reverse("access:grant-revoke", args=[granted.pk]), {"reason": "no"})
    assert response.status_code == 403
    granted.refresh_from_db()
    assert granted.status == Grant.Status.ACTIVE


def test_owner_revokes_a_grant(client, service_owner, granted):
    client.force_login(service_owner)
    response = client.post(
        reverse("access:grant-revoke", args=[granted.pk]), {"reason": "leaving the project"}
    )
    assert response["Location"] == reverse("access:grant-detail", args=[granted.pk])
    granted.refresh_from_db()
    assert granted.status == Grant.Status.REVOKED


# --- Delegations ----------------------------------------------------------------------
def test_create_list_and_end_a_delegation(client, manager, requester):
    client.force_login(manager)
    today = timezone.localdate()
    response = client.post(
        reverse("access:delegation-list"),
        {
            "delegate": "REQUESTER@example.com",
            "starts_on": today.isoformat(),
            "ends_on": (today + timedelta(days=5)).isoformat(),
            "reason": "holiday",
        },
    )
    assert response["Location"] == reverse("access:delegation-list")
    delegation = Delegation.objects.get()
    assert (delegation.delegator, delegation.delegate, delegation.reason) == (
        manager,
        requester,
        "holiday",
    )
    page = text(client.get(response["Location"]))
    assert (
        f"requester@example.com may approve for you from {today} to {today + timedelta(days=5)}."
        in page
    )
    assert (
        f"requester@example.com {today:%Y-%m-%d} {today + timedelta(days=5):%Y-%m-%d} holiday End now"
        in page
    )
    client.force_login(requester)
    received = text(client.get(reverse("access:delegation-list")))
    assert f"Received For From To Why manager@example.com {today:%Y-%m-%d}" in received
    assert (
        client.post(reverse("access:delegation-end", args=[delegation.pk])).status_code == 404
    )  # not theirs
    client.force_login(manager)
    ended = client.post(reverse("access:delegation-end", args=[delegation.pk]))
    assert ended["Location"] == reverse("access:delegation-list")
    delegation.refresh_from_db()
    assert delegation.ends_on == today - timedelta(days=1)
    assert AuditEvent.objects.filter(action="delegation.ended").count() == 1


def test_delegation_errors_are_field_errors(client, manager, requester):
    client.force_login(manager)
    today = timezone.localdate()
    unknown = client.post(
        reverse("access:delegation-list"),
        {"delegate": "nobody@example.com", "starts_on": today, "ends_on": today},
    )
    assert "nobody active has that e-mail" in text(unknown)
    myself = client.post(
        reverse("access:delegation-list"),
        {"delegate": manager.email, "starts_on": today, "ends_on": today},
    )
    assert "you cannot delegate to yourself" in text(myself)
    backwards = client.post(
        reverse("access:delegation-list"),
        {
            "delegate": "requester@example.com",
            "starts_on": today,
            "ends_on": today - timedelta(days=2),
        },
    )
    assert backwards.status_code == 200
    assert "the delegation ends before it starts" in text(backwards)
    assert Delegation.objects.count() == 0
