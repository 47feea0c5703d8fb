"""Catalog pages (A1): list with HTMX filtering and pagination, service page, edit pages."""

from __future__ import annotations

import html
import re

import pytest
from django.urls import reverse

from access.models import Entitlement, Grant, Service
from audit.models import AuditEvent

from .factories import make_entitlement, make_service

pytestmark = pytest.mark.django_db


def text(response) -> str:
    body = re.sub(r"<[^>]+>", " ", response.content.decode())
    return html.unescape(re.sub(r"\s+", " ", body).strip())


def service_links(response) -> list[str]:
    return re.findall(r'href="/catalog/([a-z0-9-]+)/"', response.content.decode())


@pytest.fixture
def services_(org):
    billing = make_service(org["payments"], slug="billing-db", tier=0)
    billing.description = "The billing ledger database"
    billing.docs_url = "https://docs.example.com/billing"
    billing.save()
    make_entitlement(billing, slug="read", risk="low", max_days=90, seat_cost_monthly="12.50")
    make_entitlement(billing, slug="admin", risk="critical", max_days=7, requestable=False)
    search = make_service(org["search"], slug="search-index", tier=2)
    make_entitlement(search, slug="query", risk="medium")
    return {"billing": billing, "search": search}


@pytest.mark.sqlite
def test_catalog_lists_services_for_any_signed_in_person(client, other_team_user, services_):
    client.force_login(other_team_user)
    response = client.get(reverse("access:catalog"))
    assert response.status_code == 200
    assert service_links(response) == ["billing-db", "search-index"]
    page = text(response)
    assert "2 services" in page
    assert "Billing Db billing-db Payments Tier 0 2 The billing ledger database" in page


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"q": "ledger"}, ["billing-db"]),
        ({"q": "search"}, ["search-index"]),
        ({"team": "search"}, ["search-index"]),
        ({"tier": "0"}, ["billing-db"]),
        ({"risk": "critical"}, ["billing-db"]),
        ({"risk": "medium", "team": "payments"}, []),
        ({"tier": "bogus"}, ["billing-db", "search-index"]),
    ],
)
def test_catalog_filters(client, requester, services_, params, expected):
    client.force_login(requester)
    response = client.get(reverse("access:catalog"), params)
    assert service_links(response) == expected


def test_catalog_htmx_returns_the_results_partial(client, requester, services_):
    client.force_login(requester)
    response = client.get(reverse("access:catalog"), {"q": "ledger"}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body and "<nav>" not in body
    assert body.startswith('<p class="muted small" id="catalog-count">1 service matches</p>')
    assert service_links(response) == ["billing-db"]


def test_catalog_page_has_live_filter_attributes(client, requester, services_):
    client.force_login(requester)
    body = client.get(reverse("access:catalog")).content.decode()
    assert 'hx-trigger="input changed delay:300ms, search"' in body
    assert 'hx-push-url="true"' in body
    assert 'hx-target="#catalog-results"' in body


def test_catalog_paginates_25_per_page(client, requester, org):
    for i in range(30):
        make_service(org["search"], slug=f"svc-{i:02d}")
    client.force_login(requester)
    first = client.get(reverse("access:catalog"))
    assert len(service_links(first)) == 25
    assert "Page 1 of 2 · 30 in all" in text(first)
    second = client.get(reverse("access:catalog"), {"page": 2, "team": "search"})
    assert service_links(second) == [f"svc-{i:02d}" for i in range(25, 30)]
    assert 'href="/catalog/?team=search&amp;page=1"' in second.content.decode()


@pytest.mark.parametrize("rows", [10, 50])
def test_catalog_query_count_is_bounded(
    client, requester, org, rows, django_assert_max_num_queries
):
    for i in range(rows):
        service = make_service(org["search"], slug=f"svc-{i:02d}")
        for j in range(4):
            make_entitlement(service, slug=f"e{j}", risk=["low", "medium", "high", "critical"][j])
    client.force_login(requester)
    with django_assert_max_num_queries(13):  # 10, and the header menus' counts
        response = client.get(reverse("access:catalog"), {"risk": "high"})
    assert len(service_links(response)) == min(rows, 25)


# --- Service page ---------------------------------------------------------------------
def test_service_page_shows_entitlements_owners_and_request_links(
    client, other_team_user, requester, manager, services_
):
    client.force_login(other_team_user)
    billing = services_["billing"]
    read = billing.entitlements.get(slug="read")
    response = client.get(reverse("access:service-detail", args=["billing-db"]))
    assert response.status_code == 200
    page = text(response)
    assert "Tier 0 · owned by Payments · Documentation" in page
    assert "The billing ledger database" in page
    assert "Read read Low 30 days by default, at most 90 12.50 — Request" in page
    assert "Admin admin Critical 7 days by default, at most 7 0.00 — Not requestable" in page
    assert f'href="/requests/new/?entitlement={read.pk}"' in response.content.decode()
    assert (
        "Owners" in page
        and "Manager manager@example.com" in page
        and "Requester requester@example.com" in page
    )
    assert "Who holds what" not in page  # not an owner, not security
    assert "Edit service" not in page


def test_holders_are_shown_to_owners_and_security_only(
    client, requester, service_owner, security, services_
):
    query = services_["search"].entitlements.get(slug="query")
    Grant.objects.create(principal=requester, entitlement=query, status=Grant.Status.ACTIVE)
    url = reverse("access:service-detail", args=["search-index"])
    client.force_login(requester)
    assert "Who holds what" not in text(client.get(url))
    client.force_login(service_owner)
    page = text(client.get(url))
    assert (
        "Who holds what Entitlement Holder Team Status Until Query requester@example.com Payments Active no end"
        in page
    )
    assert "Edit service" in page
    client.force_login(security)
    assert "requester@example.com Payments Active" in text(client.get(url))


def test_unknown_service_is_404(client, requester):
    client.force_login(requester)
    assert client.get(reverse("access:service-detail", args=["nope"])).status_code == 404


# --- Editing --------------------------------------------------------------------------
def test_edit_pages_are_404_for_non_owners_and_nothing_changes(client, other_team_user, services_):
    search = services_["search"]
    query = search.entitlements.get(slug="query")
    client.force_login(other_team_user)
    events = AuditEvent.objects.count()
    urls = [
        reverse("access:service-edit", args=["search-index"]),
        reverse("access:entitlement-create", args=["search-index"]),
        reverse("access:entitlement-edit", args=["search-index", query.pk]),
        reverse("access:service-create"),
    ]
    for url in urls:
        assert client.get(url).status_code == 404, url
        assert (
            client.post(url, {"name": "Hacked", "slug": "x", "risk": "low"}).status_code == 404
        ), url
    search.refresh_from_db()
    assert search.name == "Search Index"
    assert Entitlement.objects.filter(service=search).count() == 1
    assert AuditEvent.objects.count() == events


def test_owner_edits_the_service_and_it_is_audited(client, service_owner, services_):
    client.force_login(service_owner)
    url = reverse("access:service-edit", args=["search-index"])
    form = client.get(url)
    assert 'name="owner_team"' not in form.content.decode()  # only admins move a service
    response = client.post(
        url,
        {
            "name": "Search",
            "tier": "1",
            "description": "Full-text search",
            "docs_url": "https://docs.example.com/search",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("access:service-detail", args=["search-index"])
    service = Service.objects.get(slug="search-index")
    assert (service.name, service.tier, service.description) == ("Search", 1, "Full-text search")
    event = AuditEvent.objects.get(action="service.updated")
    assert event.actor == service_owner
    assert event.after == {
        "name": "Search",
        "tier": 1,
        "description": "Full-text search",
        "docs_url": "https://docs.example.com/search",
    }


def test_owner_adds_and_edits_an_entitlement(client, service_owner, services_):
    client.force_login(service_owner)
    data = {
        "slug": "write",
        "name": "Write",
        "risk": "high",
        "default_duration_days": "7",
        "max_duration_days": "14",
        "seat_cost_monthly": "5.00",
        "requestable": "on",
    }
    response = client.post(reverse("access:entitlement-create", args=["search-index"]), data)
    assert response.status_code == 302
    ent = Entitlement.objects.get(service__slug="search-index", slug="write")
    assert (ent.risk, ent.max_duration_days, str(ent.seat_cost_monthly), ent.requestable) == (
        "high",
        14,
        "5.00",
        True,
    )
    assert (
        AuditEvent.objects.filter(action="entitlement.created", target_id=str(ent.pk)).count() == 1
    )
    edit = reverse("access:entitlement-edit", args=["search-index", ent.pk])
    bad = client.post(edit, {**data, "default_duration_days": "30"})
    assert bad.status_code == 200
    assert "default_duration_days (30) exceeds max_duration_days (14)" in text(bad)
    ok = client.post(edit, {**data, "max_duration_days": "21", "requestable": ""})
    assert ok.status_code == 302
    ent.refresh_from_db()
    assert (ent.max_duration_days, ent.requestable) == (21, False)
    assert AuditEvent.objects.get(action="entitlement.updated").after == {
        "requestable": False,
        "max_duration_days": 21,
    }


def test_duplicate_entitlement_slug_is_a_field_error(client, service_owner, services_):
    client.force_login(service_owner)
    data = {
        "slug": "query",
        "name": "Again",
        "risk": "low",
        "default_duration_days": "7",
        "max_duration_days": "14",
        "seat_cost_monthly": "0",
    }
    response = client.post(reverse("access:entitlement-create", args=["search-index"]), data)
    assert response.status_code == 200
    assert "search-index already has an entitlement 'query'" in text(response)
    assert Entitlement.objects.filter(service__slug="search-index").count() == 1


def test_entitlement_of_another_service_is_404_on_the_edit_url(client, service_owner, services_):
    read = services_["billing"].entitlements.get(slug="read")
    client.force_login(service_owner)
    assert (
        client.get(reverse("access:entitlement-edit", args=["search-index", read.pk])).status_code
        == 404
    )


def test_admin_creates_a_service(client, admin, org):
    client.force_login(admin)
    assert "Add a service" in text(client.get(reverse("access:catalog")))
    data = {
        "slug": "vault",
        "name": "Vault",
        "owner_team": "platform",
        "tier": "0",
        "description": "",
        "docs_url": "",
    }
    response = client.post(reverse("access:service-create"), data)
    assert response["Location"] == reverse("access:service-detail", args=["vault"])
    service = Service.objects.get(slug="vault")
    assert (service.owner_team.slug, service.tier) == ("platform", 0)
    assert (
        AuditEvent.objects.filter(action="service.created", target_id=str(service.pk)).count() == 1
    )
    again = client.post(reverse("access:service-create"), data)
    assert again.status_code == 200
    assert "a service with slug 'vault' already exists" in text(again)
