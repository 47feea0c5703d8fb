"""GET /api/v1/grants/ and POST /api/v1/grants/<id>/revoke."""

from __future__ import annotations

import pytest

from access import services
from access.models import Grant
from audit.models import AuditEvent

from .conftest import token_api

pytestmark = pytest.mark.django_db


def _grant(requester, manager, entitlement) -> Grant:
    req = services.access_request_submit(
        actor=requester,
        principal=requester,
        entitlement=entitlement,
        justification="x",
        duration_days=5,
    )
    services.access_request_approve(actor=manager, request_id=req.pk)
    return Grant.objects.get(request=req)


@pytest.mark.sqlite
def test_my_grants_have_the_contract_shape(requester, manager, catalog):
    grant = _grant(requester, manager, catalog["read"])
    body = token_api(requester).get("/api/v1/grants/", {"principal": "me"}).json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 1
    result = body["results"][0]
    assert result["id"] == grant.pk
    assert result["status"] == "active"
    assert result["entitlement"] == {
        "id": catalog["read"].pk,
        "slug": "read",
        "name": "Read",
        "service": "search-db",
    }
    assert result["starts_at"] and result["ends_at"]
    assert result["principal"] == requester.pk
    assert result["request"] == grant.request_id


@pytest.mark.parametrize(
    "persona,count",
    [
        ("requester", 1),
        ("manager", 1),
        ("service_owner", 1),
        ("other_team_user", 0),
        ("security", 1),
        ("admin", 1),
    ],
)
def test_grant_visibility_by_persona(personas, catalog, persona, count):
    _grant(personas["requester"], personas["manager"], catalog["read"])
    api = token_api(personas[persona])
    assert api.get("/api/v1/grants/").json()["count"] == count
    mine = api.get("/api/v1/grants/", {"principal": "me"}).json()["count"]
    assert mine == (1 if persona == "requester" else 0)


def test_grants_filter_by_principal_id_and_status(requester, manager, other_team_user, catalog):
    grant = _grant(requester, manager, catalog["read"])
    api = token_api(manager)
    assert [
        g["id"] for g in api.get("/api/v1/grants/", {"principal": requester.pk}).json()["results"]
    ] == [grant.pk]
    assert api.get("/api/v1/grants/", {"principal": other_team_user.pk}).json()["count"] == 0
    assert api.get("/api/v1/grants/", {"status": "revoked"}).json()["count"] == 0
    bad = api.get("/api/v1/grants/", {"principal": "everyone"})
    assert bad.status_code == 400
    assert bad.json()["field"] == "principal"


def test_holder_revokes_and_the_grant_leaves_the_default_list(requester, manager, catalog):
    grant = _grant(requester, manager, catalog["read"])
    api = token_api(requester)
    response = api.post(f"/api/v1/grants/{grant.pk}/revoke", {"reason": "done"})
    assert response.status_code == 200
    assert response.json()["status"] == "revoked"
    grant.refresh_from_db()
    assert (grant.status, grant.revoke_reason) == ("revoked", "done")
    assert api.get("/api/v1/grants/", {"principal": "me"}).json()["count"] == 0
    revoked = api.get("/api/v1/grants/", {"principal": "me", "status": "revoked"}).json()
    assert [g["id"] for g in revoked["results"]] == [grant.pk]


def test_owner_revokes_without_a_reason(requester, manager, service_owner, catalog):
    grant = _grant(requester, manager, catalog["read"])
    response = token_api(service_owner).post(f"/api/v1/grants/{grant.pk}/revoke")
    assert response.status_code == 200
    grant.refresh_from_db()
    assert (grant.status, grant.revoke_reason) == ("revoked", "revoked through the API")


def test_revoke_other_teams_grant_is_404_and_unchanged(
    requester, manager, other_team_user, catalog
):
    grant = _grant(requester, manager, catalog["read"])
    api = token_api(other_team_user)
    before = AuditEvent.objects.count()
    response = api.post(f"/api/v1/grants/{grant.pk}/revoke", {"reason": "x"})
    assert response.status_code == 404
    grant.refresh_from_db()
    assert grant.status == "active"
    assert AuditEvent.objects.count() == before


def test_manager_sees_but_may_not_revoke_a_reports_grant(requester, manager, catalog):
    grant = _grant(requester, manager, catalog["read"])
    api = token_api(manager)
    before = AuditEvent.objects.count()
    response = api.post(f"/api/v1/grants/{grant.pk}/revoke", {"reason": "x"})
    assert response.status_code == 403
    grant.refresh_from_db()
    assert grant.status == "active"
    assert AuditEvent.objects.count() == before


def test_revoking_a_revoked_grant_is_409(requester, manager, catalog):
    grant = _grant(requester, manager, catalog["read"])
    api = token_api(requester)
    assert api.post(f"/api/v1/grants/{grant.pk}/revoke", {"reason": "done"}).status_code == 200
    before = AuditEvent.objects.count()
    response = api.post(f"/api/v1/grants/{grant.pk}/revoke", {"reason": "again"})
    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
    assert AuditEvent.objects.count() == before


def test_revoke_with_extra_fields_is_refused(requester, manager, catalog):
    grant = _grant(requester, manager, catalog["read"])
    response = token_api(requester).post(
        f"/api/v1/grants/{grant.pk}/revoke", {"reason": "x", "status": "active"}
    )
    assert response.status_code == 400
    assert response.json()["field"] == "status"
    grant.refresh_from_db()
    assert grant.status == "active"
