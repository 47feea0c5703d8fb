"""The request form, its preview, my requests and the request page (A2, A3, A5)."""

from __future__ import annotations

import html
import re

import pytest
from django.urls import reverse

from access import services
from access.models import AccessRequest, Grant, ToxicPair
from audit.models import AuditEvent

from ..conftest import make_user
from .factories import make_entitlement, make_policy, make_service

pytestmark = pytest.mark.django_db


def login(client, user):
    client.force_login(user)
    return client


def text(response) -> str:
    """The page as text, tags stripped and whitespace squeezed, for exact phrase checks."""
    body = response.content.decode()
    body = re.sub(r"<[^>]+>", " ", body)
    return html.unescape(re.sub(r"\s+", " ", body).strip())


@pytest.fixture
def catalog(org):
    service = make_service(org["search"], slug="search-index")
    read = make_entitlement(
        service, slug="read", max_days=60, policy=make_policy("mgr", [("manager", 1)])
    )
    two = make_entitlement(
        service,
        slug="admin",
        risk="high",
        max_days=7,
        policy=make_policy("mgr-owner", [("manager", 1), ("service_owner", 1)]),
    )
    return {"service": service, "read": read, "admin": two}


def submit(client, *ents, duration=5, justification="on-call", principal=None, **extra):
    data = {
        "entitlement": [e.pk for e in ents],
        "duration_days": duration,
        "justification": justification,
        **extra,
    }
    if principal is not None:
        data["principal"] = principal.pk
    return client.post(reverse("access:request-new"), data)


# --- The form and its preview ---------------------------------------------------------
@pytest.mark.sqlite
def test_request_form_preview_shows_stages_approvers_and_peers(
    client, requester, manager, service_owner, catalog
):
    peer = make_user("peer@example.com", team=requester.team, manager=manager)
    Grant.objects.create(principal=peer, entitlement=catalog["admin"], status=Grant.Status.ACTIVE)
    login(client, requester)
    url = (
        reverse("access:request-new")
        + f"?entitlement={catalog['read'].pk}&entitlement={catalog['admin'].pk}"
    )
    response = client.get(url)
    assert response.status_code == 200
    page = text(response)
    assert "Search Index · Read" in page
    assert "Search Index · Admin" in page
    # the smallest maximum bounds the duration
    assert "At most 7 days for what you picked (the smallest maximum)." in page
    assert 'max="7"' in response.content.decode()
    assert "The principal's manager (1 approval): Manager" in page
    assert "The service's owner team (1 approval): Owner" in page
    assert "1 of 2 teammates holds it." in page  # admin: peer holds it (team = manager + peer)
    assert "0 of 2 teammates hold it." in page  # read


def test_preview_partial_names_refusals_and_updates_the_duration_hint(
    client, requester, manager, catalog, org
):
    ToxicPair.objects.create(
        first=catalog["read"], second=catalog["admin"], reason="reader may not administer"
    )
    Grant.objects.create(
        principal=requester, entitlement=catalog["read"], status=Grant.Status.ACTIVE
    )
    login(client, requester)
    response = client.get(
        reverse("access:request-preview"),
        {"entitlement": [catalog["admin"].pk], "duration_days": 30},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" not in body
    assert 'id="duration-hint" hx-swap-oob="true"' in body
    page = text(response)
    assert "At most 7 days for what you picked" in page
    assert (
        "Will be refused: duration must be between 1 and 7 days (the maximum for search-index/admin)"
        in page
    )
    assert (
        "Will be refused: separation of duties: search-index/admin with search-index/read: reader may not administer"
        in page
    )


def test_preview_shows_auto_approval(client, requester, manager, org):
    service = make_service(org["search"], slug="wiki")
    policy = make_policy(
        "auto", [("manager", 1)], auto_approve_max_risk="low", auto_approve_peer_ratio="0.5"
    )
    ent = make_entitlement(service, slug="view", policy=policy)
    Grant.objects.create(principal=manager, entitlement=ent, status=Grant.Status.ACTIVE)
    login(client, requester)
    response = client.get(reverse("access:request-preview"), {"entitlement": [ent.pk]})
    assert (
        "Approved at once — auto-approved: low risk and held by 100% of the team (1 of 1; policy needs 50%)"
        in text(response)
    )


def test_picker_keeps_ticked_and_lists_matches(client, requester, catalog, org):
    other = make_service(org["payments"], slug="ledger")
    make_entitlement(other, slug="reader")
    make_entitlement(other, slug="hidden", requestable=False)
    login(client, requester)
    response = client.get(
        reverse("access:request-picker"), {"q": "ledger", "entitlement": [catalog["read"].pk]}
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert f'value="{catalog["read"].pk}" checked' in body
    page = text(response)
    assert "Ledger · Reader" in page
    assert "Hidden" not in page  # not requestable: not offered


# --- Submitting -----------------------------------------------------------------------
@pytest.mark.sqlite
def test_submit_one_creates_the_request_and_shows_it(client, requester, manager, catalog):
    login(client, requester)
    response = submit(client, catalog["read"], duration=10, justification="debug the ranking")
    req = AccessRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("access:request-detail", args=[req.pk])
    assert (
        req.requester,
        req.principal,
        req.entitlement,
        req.duration_days,
        req.justification,
    ) == (
        requester,
        requester,
        catalog["read"],
        10,
        "debug the ranking",
    )
    page = text(client.get(response["Location"]))
    assert f"Request #{req.pk} submitted." in page
    assert f"Request #{req.pk} Pending" in page
    assert "The principal's manager — 1 approval needed · current" in page
    assert "An access request was submitted by requester@example.com" in page


def test_submit_several_makes_one_request_each(client, requester, service_owner, catalog):
    login(client, requester)
    response = submit(client, catalog["read"], catalog["admin"], duration=7)
    assert response.status_code == 302
    assert response["Location"] == reverse("access:request-list")
    assert sorted(AccessRequest.objects.values_list("entitlement__slug", flat=True)) == [
        "admin",
        "read",
    ]


def test_double_submit_creates_one_request_and_redirects_to_it(client, requester, catalog):
    login(client, requester)
    first = submit(client, catalog["read"])
    second = submit(client, catalog["read"])
    req = AccessRequest.objects.get()
    assert (
        first["Location"] == second["Location"] == reverse("access:request-detail", args=[req.pk])
    )
    page = text(client.get(second["Location"]))
    assert (
        "Nothing new was submitted: requester@example.com already has an open request for search-index/read. Here is the open request."
        in page
    )
    assert AuditEvent.objects.filter(action="request.submitted").count() == 1


def test_duration_above_maximum_is_a_field_error_and_nothing_is_written(client, requester, catalog):
    login(client, requester)
    events = AuditEvent.objects.count()
    response = submit(client, catalog["admin"], duration=30)
    assert response.status_code == 200
    assert "at most 7 days for the entitlements you picked" in text(response)
    assert AccessRequest.objects.count() == 0
    assert AuditEvent.objects.count() == events


def test_service_refusal_is_shown_on_the_form(client, requester, catalog):
    ToxicPair.objects.create(
        first=catalog["read"], second=catalog["admin"], reason="reader may not administer"
    )
    Grant.objects.create(
        principal=requester, entitlement=catalog["read"], status=Grant.Status.ACTIVE
    )
    login(client, requester)
    response = submit(client, catalog["admin"], duration=3)
    assert response.status_code == 200
    assert (
        "separation of duties: search-index/admin with search-index/read: reader may not administer"
        in text(response)
    )
    assert AccessRequest.objects.count() == 0


def test_missing_justification_is_a_field_error(client, requester, catalog):
    login(client, requester)
    response = submit(client, catalog["read"], justification="")
    assert response.status_code == 200
    assert "This field is required." in text(response)
    assert AccessRequest.objects.count() == 0


def test_manager_requests_for_a_report(client, requester, manager, service_owner, catalog, org):
    boss = make_user("boss@example.com", team=org["platform"])
    manager.manager = boss
    manager.save()
    login(client, manager)
    page = client.get(reverse("access:request-new") + f"?entitlement={catalog['read'].pk}")
    assert f'<option value="{requester.pk}">' in page.content.decode()
    response = submit(client, catalog["read"], principal=requester)
    req = AccessRequest.objects.get()
    assert response["Location"] == reverse("access:request-detail", args=[req.pk])
    assert (req.requester, req.principal) == (manager, requester)


def test_requesting_for_someone_not_a_report_is_refused(
    client, requester, other_team_user, catalog
):
    login(client, requester)
    response = submit(client, catalog["read"], principal=other_team_user)
    assert response.status_code == 200
    assert "Select a valid choice. That choice is not one of the available choices." in text(
        response
    )
    assert AccessRequest.objects.count() == 0


# --- My requests and the request page -------------------------------------------------
def test_my_requests_lists_mine_only(client, requester, other_team_user, catalog):
    mine = services.access_request_submit(
        actor=requester,
        principal=requester,
        entitlement=catalog["read"],
        justification="x",
        duration_days=3,
    )
    other_mgr = make_user("othermgr@example.com", team=other_team_user.team)
    other_team_user.manager = other_mgr
    other_team_user.save()
    theirs = services.access_request_submit(
        actor=other_team_user,
        principal=other_team_user,
        entitlement=catalog["read"],
        justification="y",
        duration_days=3,
    )
    login(client, requester)
    response = client.get(reverse("access:request-list"))
    body = response.content.decode()
    assert f'href="/requests/{mine.pk}/">#{mine.pk}</a>' in body
    assert f"#{theirs.pk}<" not in body
    assert "Search Index · Read" in text(response)
    pending = client.get(reverse("access:request-list"), {"status": "denied"})
    assert "No requests with this status." in text(pending)


def test_request_detail_of_another_team_is_404_and_unchanged(
    client, requester, other_team_user, catalog
):
    req = services.access_request_submit(
        actor=requester,
        principal=requester,
        entitlement=catalog["read"],
        justification="x",
        duration_days=3,
    )
    login(client, other_team_user)
    events = AuditEvent.objects.count()
    assert client.get(reverse("access:request-detail", args=[req.pk])).status_code == 404
    assert client.post(reverse("access:request-cancel", args=[req.pk])).status_code == 404
    assert (
        client.post(reverse("access:request-approve", args=[req.pk]), {"reason": "x"}).status_code
        == 404
    )
    assert (
        client.post(reverse("access:request-deny", args=[req.pk]), {"reason": "x"}).status_code
        == 404
    )
    req.refresh_from_db()
    assert req.status == AccessRequest.Status.PENDING
    assert AuditEvent.objects.count() == events


def test_request_detail_for_approver_shows_context_and_decision_form(
    client, requester, manager, catalog, org
):
    peer = make_user("peer@example.com", team=requester.team, manager=manager)
    Grant.objects.create(principal=peer, entitlement=catalog["read"], status=Grant.Status.ACTIVE)
    other_service = make_service(org["payments"], slug="ledger")
    Grant.objects.create(
        principal=requester,
        entitlement=make_entitlement(other_service, slug="viewer"),
        status=Grant.Status.ACTIVE,
    )
    req = services.access_request_submit(
        actor=requester,
        principal=requester,
        entitlement=catalog["read"],
        justification="dashboards",
        duration_days=3,
    )
    login(client, manager)
    response = client.get(reverse("access:request-detail", args=[req.pk]))
    page = text(response)
    assert "Your decision" in page
    assert "Teammates who hold it Peer" in page
    assert "requester@example.com's other access Ledger · Viewer" in page
    assert "Why dashboards" in page
    assert "Cancel this request" not in page


def test_requester_sees_no_decision_form_and_cancels(client, requester, catalog):
    req = services.access_request_submit(
        actor=requester,
        principal=requester,
        entitlement=catalog["read"],
        justification="x",
        duration_days=3,
    )
    login(client, requester)
    page = text(client.get(reverse("access:request-detail", args=[req.pk])))
    assert "Your decision" not in page
    assert "Cancel this request" in page
    response = client.post(reverse("access:request-cancel", args=[req.pk]))
    assert response["Location"] == reverse("access:request-detail", args=[req.pk])
    req.refresh_from_db()
    assert req.status == AccessRequest.Status.CANCELLED
    page = text(client.get(response["Location"]))
    assert f"Request #{req.pk} cancelled." in page
    assert "A request was cancelled by requester@example.com" in page
    again = client.post(reverse("access:request-cancel", args=[req.pk]))
    assert again.status_code == 302
    assert f"Could not cancel: request #{req.pk} is already cancelled." in text(
        client.get(again["Location"])
    )


def test_approver_who_may_see_but_not_cancel_gets_403(client, requester, manager, catalog):
    req = services.access_request_submit(
        actor=requester,
        principal=requester,
        entitlement=catalog["read"],
        justification="x",
        duration_days=3,
    )
    login(client, manager)
    response = client.post(reverse("access:request-cancel", args=[req.pk]))
    assert response.status_code == 403
    req.refresh_from_db()
    assert req.status == AccessRequest.Status.PENDING


@pytest.mark.parametrize("rows", [10, 50])
def test_my_requests_query_count_is_bounded(
    client, requester, org, rows, django_assert_max_num_queries
):
    service = make_service(org["search"], slug="bulk")
    for i in range(rows):
        ent = make_entitlement(service, slug=f"e{i}")
        AccessRequest.objects.create(
            requester=requester,
            principal=requester,
            entitlement=ent,
            justification="x",
            duration_days=1,
            stages=[],
        )
    login(client, requester)
    with django_assert_max_num_queries(11):  # 8, and the header menus' counts
        response = client.get(reverse("access:request-list"))
    assert response.status_code == 200
    assert len(re.findall(r'href="/requests/\d+/"', response.content.decode())) == min(rows, 25)
