"""Approvals inbox (A4): exactly what waits on me, with context; one by one (HTMX) or in bulk."""

from __future__ import annotations

import html
import re

import pytest
from django.urls import reverse

from access import services
from access.models import AccessRequest, Approval, Grant
from audit.models import AuditEvent

from ..conftest import make_user
from .factories import make_entitlement, make_policy, make_service

pytestmark = pytest.mark.django_db


def text(response) -> str:
    body = re.sub(r"<[^>]+>", " ", response.content.decode())
    return html.unescape(re.sub(r"\s+", " ", body).strip())


def inbox_ids(response) -> list[int]:
    return [int(x) for x in re.findall(r'<tr id="inbox-row-(\d+)"', response.content.decode())]


@pytest.fixture
def ents(org):
    service = make_service(org["search"], slug="search-index")
    mgr = make_policy("mgr", [("manager", 1)])
    return {
        "read": make_entitlement(service, slug="read", policy=mgr),
        "write": make_entitlement(service, slug="write", risk="high", policy=mgr),
        "owner": make_entitlement(
            service, slug="owner-only", policy=make_policy("own", [("service_owner", 1)])
        ),
    }


def submit(user, ent, principal=None, why="on-call"):
    return services.access_request_submit(
        actor=user, principal=principal or user, entitlement=ent, justification=why, duration_days=5
    )


@pytest.mark.sqlite
def test_inbox_shows_exactly_what_waits_on_me_with_context(
    client, requester, manager, service_owner, other_team_user, ents, org
):
    peer = make_user("peer@example.com", team=requester.team, manager=manager)
    Grant.objects.create(principal=peer, entitlement=ents["read"], status=Grant.Status.ACTIVE)
    ledger = make_service(org["payments"], slug="ledger")
    Grant.objects.create(
        principal=requester,
        entitlement=make_entitlement(ledger, slug="viewer"),
        status=Grant.Status.ACTIVE,
    )
    mine = submit(requester, ents["read"], why="dashboards for the incident")
    owners = submit(requester, ents["owner"])  # waits on the owner team, not the manager
    other_mgr = make_user("othermgr@example.com", team=org["other"])
    other_team_user.manager = other_mgr
    other_team_user.save()
    submit(other_team_user, ents["read"])  # waits on someone else's manager
    client.force_login(manager)
    response = client.get(reverse("access:approvals"))
    assert response.status_code == 200
    assert inbox_ids(response) == [mine.pk]
    page = text(response)
    assert "1 waiting." in page
    assert (
        f"Requester requester@example.com · Payments #{mine.pk} Search Index · Read Low 5 days · stage 1 of 1 "
        "dashboards for the incident 1 of 2 Ledger · Viewer"
    ) in page
    assert 'Approvals <span class="badge status-pending">1</span>' in response.content.decode()
    client.force_login(service_owner)
    assert inbox_ids(client.get(reverse("access:approvals"))) == [owners.pk]
    client.force_login(requester)
    empty = client.get(reverse("access:approvals"))
    assert inbox_ids(empty) == []
    assert "Nothing waits on you." in text(empty)


def test_approve_from_the_inbox_creates_the_grant(client, requester, manager, ents):
    req = submit(requester, ents["read"])
    client.force_login(manager)
    response = client.post(
        reverse("access:request-approve", args=[req.pk]), {"reason": "fine", "back": "inbox"}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("access:approvals")
    req.refresh_from_db()
    assert req.status == AccessRequest.Status.APPROVED
    grant = Grant.objects.get(request=req)
    assert (grant.principal, grant.status, grant.approved_by) == (
        requester,
        Grant.Status.ACTIVE,
        [manager.email],
    )
    page = text(client.get(response["Location"]))
    assert f"Request #{req.pk}: approved." in page
    assert "Nothing waits on you." in page


def test_htmx_approve_swaps_the_row(client, requester, manager, ents):
    req = submit(requester, ents["read"])
    client.force_login(manager)
    response = client.post(
        reverse("access:request-approve", args=[req.pk]), {"reason": "ok"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert body.startswith(f'<tr id="inbox-row-{req.pk}" class="inbox-done">')
    assert (
        f"#{req.pk} requester@example.com · search-index/read: approved; the grant is on its way. Approved"
        in text(response)
    )
    again = client.post(
        reverse("access:request-approve", args=[req.pk]), {"reason": "ok"}, HTTP_HX_REQUEST="true"
    )
    assert again.status_code == 409
    assert f"not approved — request #{req.pk} is already approved." in text(again)
    assert Grant.objects.filter(request=req).count() == 1


def test_htmx_deny_without_reason_is_400_and_nothing_changes(client, requester, manager, ents):
    req = submit(requester, ents["read"])
    client.force_login(manager)
    events = AuditEvent.objects.count()
    response = client.post(
        reverse("access:request-deny", args=[req.pk]), {"reason": " "}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 400
    assert "not denied — a denial needs a reason." in text(response)
    req.refresh_from_db()
    assert req.status == AccessRequest.Status.PENDING
    assert AuditEvent.objects.count() == events


def test_deny_from_the_request_page(client, requester, manager, ents):
    req = submit(requester, ents["read"])
    client.force_login(manager)
    response = client.post(reverse("access:request-deny", args=[req.pk]), {"reason": "not needed"})
    assert response["Location"] == reverse("access:request-detail", args=[req.pk])
    req.refresh_from_db()
    assert (req.status, req.decision_reason) == (AccessRequest.Status.DENIED, "not needed")
    page = text(client.get(response["Location"]))
    assert f"Request #{req.pk}: denied." in page
    assert "manager@example.com denied" in page
    assert "A request was denied by manager@example.com “not needed”" in page
    assert not Grant.objects.filter(request=req).exists()


def test_visible_but_not_eligible_approver_gets_403_and_nothing_changes(
    client, requester, manager, service_owner, ents
):
    req = submit(
        requester, ents["read"]
    )  # manager stage; the owner team sees it but may not decide
    client.force_login(service_owner)
    assert client.get(reverse("access:request-detail", args=[req.pk])).status_code == 200
    events = AuditEvent.objects.count()
    response = client.post(reverse("access:request-approve", args=[req.pk]), {"reason": "x"})
    assert response.status_code == 403
    assert "403 · Not allowed" in text(response)
    req.refresh_from_db()
    assert req.status == AccessRequest.Status.PENDING
    assert not Approval.objects.exists()
    assert AuditEvent.objects.count() == events


def test_bulk_approve_reports_the_already_decided_item(client, requester, manager, ents, org):
    a = submit(requester, ents["read"])
    b = submit(requester, ents["write"])
    c_user = make_user("second@example.com", team=org["payments"], manager=manager)
    c = submit(c_user, ents["read"])
    services.access_request_approve(actor=manager, request_id=b.pk, reason="earlier")
    client.force_login(manager)
    response = client.post(
        reverse("access:approvals-bulk"),
        {"ids": [a.pk, b.pk, c.pk, 999999], "decision": "approve", "reason": "batch"},
    )
    assert response["Location"] == reverse("access:approvals")
    page = text(client.get(response["Location"]))
    assert f"2 approved: #{a.pk}, #{c.pk}." in page
    assert f"Not approved #{b.pk}: request #{b.pk} is already approved." in page
    assert "Not approved #999999: not found." in page
    assert sorted(Grant.objects.values_list("request_id", flat=True)) == sorted([a.pk, b.pk, c.pk])
    assert Approval.objects.filter(request=b).count() == 1


def test_bulk_deny_needs_a_reason_per_item(client, requester, manager, ents):
    a = submit(requester, ents["read"])
    client.force_login(manager)
    response = client.post(
        reverse("access:approvals-bulk"), {"ids": [a.pk], "decision": "deny", "reason": ""}
    )
    page = text(client.get(response["Location"]))
    assert f"Not denied #{a.pk}: a denial needs a reason." in page
    a.refresh_from_db()
    assert a.status == AccessRequest.Status.PENDING


def test_bulk_with_nothing_ticked_decides_nothing(client, manager):
    client.force_login(manager)
    response = client.post(reverse("access:approvals-bulk"), {"decision": "approve"})
    assert "Nothing decided: tick at least one request." in text(client.get(response["Location"]))


def test_bulk_on_another_teams_request_is_not_found_and_unchanged(
    client, requester, manager, other_team_user, ents
):
    req = submit(requester, ents["read"])
    client.force_login(other_team_user)
    response = client.post(
        reverse("access:approvals-bulk"), {"ids": [req.pk], "decision": "approve"}
    )
    assert f"Not approved #{req.pk}: not found." in text(client.get(response["Location"]))
    req.refresh_from_db()
    assert req.status == AccessRequest.Status.PENDING


@pytest.mark.parametrize("rows", [10, 50])
def test_inbox_query_count_is_bounded(client, manager, org, rows, django_assert_max_num_queries):
    service = make_service(org["search"], slug="bulk")
    policy = make_policy("mgr", [("manager", 1)])
    other = make_entitlement(service, slug="other")
    for i in range(rows):
        person = make_user(f"p{i}@example.com", team=org["payments"], manager=manager)
        Grant.objects.create(principal=person, entitlement=other, status=Grant.Status.ACTIVE)
        submit(person, make_entitlement(service, slug=f"e{i}", policy=policy))
    client.force_login(manager)
    with django_assert_max_num_queries(13):  # 10, and the header menus' counts
        response = client.get(reverse("access:approvals"))
    assert len(inbox_ids(response)) == rows
    assert text(response).count("Bulk · Other") == rows
