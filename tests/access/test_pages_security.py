"""Every access page: sign-in required, CSRF on every form, wrong method 405; and the whole
request → approve → grant flow through the pages."""

from __future__ import annotations

import html
import re

import pytest
from django.test import Client
from django.urls import reverse

from access import services
from access.models import AccessRequest, Delegation, Entitlement, Grant, Service
from audit.models import AuditEvent

from .factories import make_entitlement, make_policy, make_service

pytestmark = pytest.mark.django_db


def text(response) -> str:
    body = re.sub(r"<[^>]+>", " ", response.content.decode())
    return html.unescape(re.sub(r"\s+", " ", body).strip())


@pytest.fixture
def world(personas, org):
    service = make_service(org["search"], slug="search-index")
    ent = make_entitlement(service, slug="read", policy=make_policy("mgr", [("manager", 1)]))
    req = services.access_request_submit(
        actor=personas["requester"],
        principal=personas["requester"],
        entitlement=ent,
        justification="x",
        duration_days=3,
    )
    other = make_entitlement(service, slug="other")
    held = Grant.objects.create(
        principal=personas["requester"], entitlement=other, status=Grant.Status.ACTIVE
    )
    delegation = Delegation.objects.create(
        delegator=personas["manager"],
        delegate=personas["requester"],
        starts_on="2000-01-01",
        ends_on="2999-01-01",
    )
    return {
        "service": service,
        "ent": ent,
        "req": req,
        "grant": held,
        "delegation": delegation,
        **personas,
    }


def state():
    return (
        AuditEvent.objects.count(),
        AccessRequest.objects.count(),
        list(AccessRequest.objects.order_by("pk").values_list("status", flat=True)),
        list(Grant.objects.order_by("pk").values_list("status", flat=True)),
        Service.objects.count(),
        Entitlement.objects.count(),
        list(Delegation.objects.order_by("pk").values_list("ends_on", flat=True)),
        list(Service.objects.order_by("pk").values_list("name", flat=True)),
    )


def forms(world):
    """(persona allowed to post, url, data) for every form of the access pages."""
    req, ent, svc = world["req"], world["ent"], world["service"]
    return [
        (
            "admin",
            reverse("access:service-create"),
            {"slug": "new-svc", "name": "N", "owner_team": "search", "tier": "2"},
        ),
        (
            "service_owner",
            reverse("access:service-edit", args=[svc.slug]),
            {"name": "Renamed", "tier": "2"},
        ),
        (
            "service_owner",
            reverse("access:entitlement-create", args=[svc.slug]),
            {
                "slug": "w",
                "name": "W",
                "risk": "low",
                "default_duration_days": "1",
                "max_duration_days": "2",
                "seat_cost_monthly": "0",
            },
        ),
        (
            "service_owner",
            reverse("access:entitlement-edit", args=[svc.slug, ent.pk]),
            {
                "name": "Renamed",
                "risk": "low",
                "default_duration_days": "1",
                "max_duration_days": "2",
                "seat_cost_monthly": "0",
            },
        ),
        (
            "manager",
            reverse("access:request-new"),
            {"entitlement": [ent.pk], "duration_days": "2", "justification": "x"},
        ),
        ("requester", reverse("access:request-cancel", args=[req.pk]), {}),
        ("manager", reverse("access:request-approve", args=[req.pk]), {"reason": "ok"}),
        ("manager", reverse("access:request-deny", args=[req.pk]), {"reason": "no"}),
        ("manager", reverse("access:approvals-bulk"), {"ids": [req.pk], "decision": "approve"}),
        ("requester", reverse("access:grant-revoke", args=[world["grant"].pk]), {"reason": "done"}),
        (
            "manager",
            reverse("access:delegation-list"),
            {"delegate": "auditor@example.com", "starts_on": "2030-01-01", "ends_on": "2030-01-02"},
        ),
        ("manager", reverse("access:delegation-end", args=[world["delegation"].pk]), {}),
    ]


def test_every_form_refuses_a_post_without_csrf_token(world):
    for persona, url, data in forms(world):
        client = Client(enforce_csrf_checks=True)
        client.force_login(world[persona])
        before = state()
        response = client.post(url, data)
        assert response.status_code == 403, url
        assert state() == before, url


def test_every_form_carries_a_csrf_token(client, world):
    pages = [
        ("admin", reverse("access:service-create")),
        ("service_owner", reverse("access:service-edit", args=["search-index"])),
        ("service_owner", reverse("access:entitlement-create", args=["search-index"])),
        ("requester", reverse("access:request-new") + f"?entitlement={world['ent'].pk}"),
        ("requester", reverse("access:request-detail", args=[world["req"].pk])),
        ("manager", reverse("access:request-detail", args=[world["req"].pk])),
        ("manager", reverse("access:approvals")),
        ("requester", reverse("access:grant-list")),
        ("requester", reverse("access:grant-detail", args=[world["grant"].pk])),
        ("manager", reverse("access:delegation-list")),
    ]
    for persona, url in pages:
        client.force_login(world[persona])
        body = client.get(url).content.decode()
        posts = body.count('method="post"')
        assert posts >= 2, url  # the page's own form(s) and sign-out
        assert body.count('name="csrfmiddlewaretoken"') == posts, url


def test_posting_with_the_token_works(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world["requester"])
    page = client.get(reverse("access:request-detail", args=[world["req"].pk])).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post(
        reverse("access:request-cancel", args=[world["req"].pk]), {"csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302
    world["req"].refresh_from_db()
    assert world["req"].status == AccessRequest.Status.CANCELLED


def test_wrong_method_is_405(client, world):
    client.force_login(world["admin"])
    for _persona, url, _data in forms(world):
        method = (
            "get"
            if "new" not in url and "edit" not in url and not url.endswith("/delegations/")
            else "put"
        )
        response = getattr(client, method)(url)
        assert response.status_code == 405, (method, url)
    get_only = [
        reverse("access:catalog"),
        reverse("access:service-detail", args=["search-index"]),
        reverse("access:request-list"),
        reverse("access:request-preview"),
        reverse("access:request-picker"),
        reverse("access:request-detail", args=[world["req"].pk]),
        reverse("access:approvals"),
        reverse("access:grant-list"),
        reverse("access:grant-detail", args=[world["grant"].pk]),
    ]
    for url in get_only:
        assert client.post(url).status_code == 405, url
        assert client.delete(url).status_code == 405, url


def test_anonymous_is_sent_to_sign_in_everywhere(client, world):
    before = state()
    urls = [url for _p, url, _d in forms(world)] + [
        reverse("access:catalog"),
        reverse("access:request-list"),
        reverse("access:approvals"),
        reverse("access:grant-list"),
        reverse("access:request-detail", args=[world["req"].pk]),
    ]
    for url in urls:
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            assert response.status_code == 302, url
            assert response["Location"].startswith("/accounts/login/"), url
    assert state() == before


@pytest.mark.sqlite
def test_request_approve_grant_through_the_pages(client, requester, manager, org):
    service = make_service(org["search"], slug="search-index")
    ent = make_entitlement(service, slug="read", policy=make_policy("mgr", [("manager", 1)]))
    client.force_login(requester)
    form = client.get(reverse("access:service-detail", args=["search-index"]))
    assert f'href="/requests/new/?entitlement={ent.pk}"' in form.content.decode()
    response = client.post(
        reverse("access:request-new"),
        {"entitlement": [ent.pk], "duration_days": "14", "justification": "investigate ranking"},
    )
    req = AccessRequest.objects.get()
    assert response["Location"] == reverse("access:request-detail", args=[req.pk])
    assert "You hold no access right now." in text(client.get(reverse("access:grant-list")))

    client.force_login(manager)
    inbox = client.get(reverse("access:approvals"))
    assert f'<tr id="inbox-row-{req.pk}"' in inbox.content.decode()
    assert "investigate ranking" in text(inbox)
    approved = client.post(
        reverse("access:request-approve", args=[req.pk]), {"reason": "ok", "back": "inbox"}
    )
    assert approved["Location"] == reverse("access:approvals")

    client.force_login(requester)
    grants = text(client.get(reverse("access:grant-list")))
    grant = Grant.objects.get(request=req)
    assert grant.status == Grant.Status.ACTIVE
    assert f"Search Index · Read Active {grant.starts_at:%Y-%m-%d}" in grants
    detail = text(client.get(reverse("access:request-detail", args=[req.pk])))
    assert f"Request #{req.pk} Approved" in detail
    assert f"Grant #{grant.pk} Active" in detail
    assert (
        "An access request was submitted by requester@example.com “investigate ranking”" in detail
    )
    assert "An approver approved a stage by manager@example.com “ok”" in detail
    assert "A request was approved by manager@example.com “ok”" in detail
