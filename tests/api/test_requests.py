"""POST/GET /api/v1/requests/, decisions, and the approvals inbox, as each persona."""

from __future__ import annotations

import pytest

from access import services
from access.models import AccessRequest, Approval, Grant
from audit.models import AuditEvent

from .conftest import session_api, token_api

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"


def _submit(user, entitlement, **kw):
    return services.access_request_submit(
        actor=user,
        principal=kw.pop("principal", user),
        entitlement=entitlement,
        justification=kw.pop("justification", "on-call"),
        duration_days=kw.pop("duration_days", 7),
    )


def _snapshot(req: AccessRequest):
    req.refresh_from_db()
    return (
        req.status,
        req.current_stage,
        req.decided_at,
        req.approvals.count(),
        AuditEvent.objects.count(),
    )


# --- submit -----------------------------------------------------------------------------


@pytest.mark.sqlite
def test_submit_creates_a_pending_request(requester, catalog):
    response = token_api(requester).post(
        "/api/v1/requests/",
        {"entitlement": catalog["read"].pk, "justification": "on-call", "duration_days": 7},
    )
    assert response.status_code == 201
    body = response.json()
    req = AccessRequest.objects.get()
    assert response["Location"] == f"/api/v1/requests/{req.pk}"
    assert body["id"] == req.pk
    assert body["status"] == "pending"
    assert body["principal"] == requester.pk
    assert body["requester"] == requester.pk
    assert body["entitlement"] == catalog["read"].pk
    assert body["service"] == "search-db"
    assert body["duration_days"] == 7
    assert body["current_stage"] == 1
    assert body["stages"] == [{"name": "Manager", "kind": "manager", "required": 1}]
    assert (req.requester, req.principal, req.duration_days) == (requester, requester, 7)


def test_submit_without_duration_uses_the_default(requester, catalog):
    response = token_api(requester).post(
        "/api/v1/requests/", {"entitlement": catalog["read"].pk, "justification": "on-call"}
    )
    assert response.status_code == 201
    assert response.json()["duration_days"] == catalog["read"].default_duration_days


@pytest.mark.parametrize(
    "body,field",
    [
        (lambda ent: {"justification": "x"}, "entitlement"),
        (lambda ent: {"entitlement": 999999, "justification": "x"}, "entitlement"),
        (lambda ent: {"entitlement": "abc", "justification": "x"}, "entitlement"),
        (lambda ent: {"entitlement": ent}, "justification"),
        (lambda ent: {"entitlement": ent, "justification": "   "}, "justification"),
        (
            lambda ent: {"entitlement": ent, "justification": "x", "duration_days": 0},
            "duration_days",
        ),
        (
            lambda ent: {"entitlement": ent, "justification": "x", "duration_days": "soon"},
            "duration_days",
        ),
        (lambda ent: {"entitlement": ent, "justification": "x", "principal": "me"}, "principal"),
    ],
)
def test_submit_bad_input_is_400_naming_the_field(requester, catalog, body, field):
    body = body(catalog["read"].pk)
    api = token_api(requester)
    before = AuditEvent.objects.count()
    response = api.post("/api/v1/requests/", body)
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == 400
    assert problem["field"] == field
    assert problem["type"] == "https://tollgate.test/problems/validation-error"
    assert AccessRequest.objects.count() == 0
    assert AuditEvent.objects.count() == before


def test_submit_over_the_maximum_names_the_maximum(requester, catalog):
    response = token_api(requester).post(
        "/api/v1/requests/",
        {"entitlement": catalog["admin"].pk, "justification": "x", "duration_days": 15},
    )
    assert response.status_code == 400
    assert response.json()["field"] == "duration_days"
    assert "maximum of 14 days" in response.json()["detail"]
    assert AccessRequest.objects.count() == 0


def test_submit_not_requestable_is_400(requester, catalog):
    response = token_api(requester).post(
        "/api/v1/requests/", {"entitlement": catalog["locked"].pk, "justification": "x"}
    )
    assert response.status_code == 400
    assert response.json()["field"] == "entitlement"
    assert AccessRequest.objects.count() == 0


def test_submit_unknown_fields_are_refused_and_named(requester, catalog):
    response = token_api(requester).post(
        "/api/v1/requests/",
        {
            "entitlement": catalog["read"].pk,
            "justification": "x",
            "status": "approved",
            "approver": 1,
        },
    )
    assert response.status_code == 400
    assert response.json()["field"] == "approver"
    assert "approver" in response.json()["detail"]
    assert "status" in response.json()["detail"]
    assert AccessRequest.objects.count() == 0


@pytest.mark.parametrize("body", [[1, 2], "just a string", 42])
def test_submit_non_object_body_is_400(requester, catalog, body):
    response = token_api(requester).post("/api/v1/requests/", body)
    assert response.status_code == 400
    assert AccessRequest.objects.count() == 0


def test_submit_malformed_json_is_400_problem(requester):
    api = token_api(requester)
    response = api.client.post(
        "/api/v1/requests/", "{nope", content_type="application/json", headers=api.headers
    )
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM


def test_submit_form_encoded_is_415(requester, catalog):
    api = token_api(requester)
    response = api.client.post(
        "/api/v1/requests/",
        {"entitlement": catalog["read"].pk, "justification": "x"},
        headers=api.headers,
    )
    assert response.status_code == 415
    assert AccessRequest.objects.count() == 0


def test_duplicate_open_request_is_409(requester, catalog):
    api = token_api(requester)
    body = {"entitlement": catalog["read"].pk, "justification": "x"}
    assert api.post("/api/v1/requests/", body).status_code == 201
    before = AuditEvent.objects.count()
    response = api.post("/api/v1/requests/", body)
    assert response.status_code == 409
    assert response["Content-Type"] == PROBLEM
    assert AccessRequest.objects.count() == 1
    assert AuditEvent.objects.count() == before


def test_manager_requests_for_a_report(org, manager, requester, catalog):
    from tests.conftest import make_user

    # The manager requested on the report's behalf, so the manager's own manager approves.
    manager.manager = make_user("director@example.com", team=org["platform"])
    manager.save(update_fields=["manager"])
    response = token_api(manager).post(
        "/api/v1/requests/",
        {
            "entitlement": catalog["read"].pk,
            "justification": "new joiner",
            "principal": requester.pk,
        },
    )
    assert response.status_code == 201
    req = AccessRequest.objects.get()
    assert (req.requester, req.principal) == (manager, requester)
    assert response.json()["principal"] == requester.pk
    assert response.json()["requester"] == manager.pk


@pytest.mark.parametrize("who", ["other", "missing"])
def test_requesting_for_someone_not_your_report_is_403(requester, other_team_user, catalog, who):
    principal = other_team_user.pk if who == "other" else 999999
    api = token_api(requester)
    before = AuditEvent.objects.count()
    response = api.post(
        "/api/v1/requests/",
        {"entitlement": catalog["read"].pk, "justification": "x", "principal": principal},
    )
    assert response.status_code == 403
    assert response["Content-Type"] == PROBLEM
    assert response.json()["field"] == "principal"
    assert AccessRequest.objects.count() == 0
    assert AuditEvent.objects.count() == before


# --- read -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "persona,visible",
    [
        ("requester", True),
        ("manager", True),
        ("service_owner", True),
        ("other_team_user", False),
        ("security", True),
        ("admin", True),
    ],
)
def test_request_visibility_by_persona(personas, catalog, persona, visible):
    req = _submit(personas["requester"], catalog["read"])
    api = session_api(personas[persona])
    detail = api.get(f"/api/v1/requests/{req.pk}")
    listing = api.get("/api/v1/requests/").json()
    if visible:
        assert detail.status_code == 200
        assert detail.json()["id"] == req.pk
        assert [r["id"] for r in listing["results"]] == [req.pk]
    else:
        assert detail.status_code == 404
        assert detail["Content-Type"] == PROBLEM
        assert listing == {"count": 0, "next": None, "previous": None, "results": []}


def test_requests_list_filters_by_status(requester, catalog):
    pending = _submit(requester, catalog["read"])
    cancelled = _submit(requester, catalog["deploy"])
    services.access_request_cancel(actor=requester, request_id=cancelled.pk)
    api = token_api(requester)
    assert [
        r["id"] for r in api.get("/api/v1/requests/", {"status": "pending"}).json()["results"]
    ] == [pending.pk]
    assert [
        r["id"] for r in api.get("/api/v1/requests/", {"status": "cancelled"}).json()["results"]
    ] == [cancelled.pk]
    bad = api.get("/api/v1/requests/", {"status": "bogus"})
    assert bad.status_code == 400
    assert bad.json()["field"] == "status"


def test_unknown_request_is_404(requester):
    assert token_api(requester).get("/api/v1/requests/424242").status_code == 404


# --- decide -----------------------------------------------------------------------------


@pytest.mark.sqlite
def test_manager_approves_and_a_grant_appears(requester, manager, catalog):
    req = _submit(requester, catalog["read"])
    response = token_api(manager).post(f"/api/v1/requests/{req.pk}/approve", {"reason": "ok"})
    assert response.status_code == 200
    assert response.json()["status"] == "approved"
    assert response.json()["current_stage"] is None
    grant = Grant.objects.get(request=req)
    assert grant.status == Grant.Status.ACTIVE
    grants = token_api(requester).get("/api/v1/grants/", {"principal": "me"}).json()
    assert [g["id"] for g in grants["results"]] == [grant.pk]


def test_approve_without_body_is_fine(requester, manager, catalog):
    req = _submit(requester, catalog["read"])
    response = session_api(manager).post(f"/api/v1/requests/{req.pk}/approve")
    assert response.status_code == 200
    assert response.json()["status"] == "approved"


def test_two_stage_request_advances_then_approves(requester, manager, service_owner, catalog):
    req = _submit(requester, catalog["admin"])
    first = token_api(manager).post(f"/api/v1/requests/{req.pk}/approve", {"reason": "ok"})
    assert first.status_code == 200
    assert (first.json()["status"], first.json()["current_stage"]) == ("pending", 2)
    second = token_api(service_owner).post(f"/api/v1/requests/{req.pk}/approve", {"reason": "ok"})
    assert second.json()["status"] == "approved"


@pytest.mark.parametrize("persona", ["requester", "service_owner", "security", "admin"])
@pytest.mark.parametrize("action", ["approve", "deny"])
def test_visible_but_not_decidable_is_403_and_unchanged(personas, catalog, persona, action):
    req = _submit(personas["requester"], catalog["read"])
    api = token_api(personas[persona])
    before = _snapshot(req)
    response = api.post(f"/api/v1/requests/{req.pk}/{action}", {"reason": "no"})
    assert response.status_code == 403
    assert response["Content-Type"] == PROBLEM
    assert _snapshot(req) == before


@pytest.mark.parametrize("action", ["approve", "deny", "cancel"])
def test_idor_other_team_gets_404_and_nothing_changes(requester, other_team_user, catalog, action):
    req = _submit(requester, catalog["read"])
    api = token_api(other_team_user)
    before = _snapshot(req)
    response = api.post(f"/api/v1/requests/{req.pk}/{action}", {"reason": "mine now"})
    assert response.status_code == 404
    assert response["Content-Type"] == PROBLEM
    assert _snapshot(req) == before


def test_deny_needs_a_reason(requester, manager, catalog):
    req = _submit(requester, catalog["read"])
    api = token_api(manager)
    before = _snapshot(req)
    for body in ({}, {"reason": ""}, {"reason": "   "}):
        response = api.post(f"/api/v1/requests/{req.pk}/deny", body)
        assert response.status_code == 400
        assert response.json()["field"] == "reason"
    assert _snapshot(req) == before
    response = api.post(f"/api/v1/requests/{req.pk}/deny", {"reason": "not needed"})
    assert response.status_code == 200
    assert response.json()["status"] == "denied"
    assert response.json()["decision_reason"] == "not needed"
    assert Approval.objects.get(request=req).decision == "deny"
    assert not Grant.objects.exists()


def test_decision_body_with_extra_fields_is_refused(requester, manager, catalog):
    req = _submit(requester, catalog["read"])
    api = token_api(manager)
    before = _snapshot(req)
    response = api.post(f"/api/v1/requests/{req.pk}/approve", {"reason": "ok", "stage": 5})
    assert response.status_code == 400
    assert response.json()["field"] == "stage"
    assert _snapshot(req) == before


def test_requester_cancels(requester, catalog):
    req = _submit(requester, catalog["read"])
    response = token_api(requester).post(f"/api/v1/requests/{req.pk}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"


def test_manager_may_see_but_not_cancel_a_reports_request(requester, manager, catalog):
    req = _submit(requester, catalog["read"])
    api = token_api(manager)
    before = _snapshot(req)
    response = api.post(f"/api/v1/requests/{req.pk}/cancel")
    assert response.status_code == 403
    assert _snapshot(req) == before


@pytest.mark.parametrize(
    "actor,action",
    [("manager", "approve"), ("manager", "deny"), ("requester", "cancel")],
)
def test_decided_request_is_409(personas, catalog, actor, action):
    req = _submit(personas["requester"], catalog["read"])
    services.access_request_cancel(actor=personas["requester"], request_id=req.pk)
    api = token_api(personas[actor])
    before = _snapshot(req)
    response = api.post(f"/api/v1/requests/{req.pk}/{action}", {"reason": "late"})
    assert response.status_code == 409
    assert response["Content-Type"] == PROBLEM
    assert response.json()["status"] == 409
    assert _snapshot(req) == before


# --- inbox ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "persona,expected",
    [
        ("requester", []),
        ("manager", ["read"]),
        ("service_owner", []),
        ("other_team_user", []),
        ("security", []),
        ("admin", []),
    ],
)
def test_approvals_inbox_by_persona(personas, catalog, persona, expected):
    _submit(personas["requester"], catalog["read"])
    body = token_api(personas[persona]).get("/api/v1/approvals/").json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert [r["entitlement_slug"] for r in body["results"]] == expected


def test_inbox_moves_to_the_owner_after_the_manager(requester, manager, service_owner, catalog):
    req = _submit(requester, catalog["admin"])
    token_api(manager).post(f"/api/v1/requests/{req.pk}/approve")
    assert token_api(manager).get("/api/v1/approvals/").json()["count"] == 0
    inbox = token_api(service_owner).get("/api/v1/approvals/").json()
    assert [r["id"] for r in inbox["results"]] == [req.pk]


# --- refusal codes ------------------------------------------------------------------------


def test_refusals_answer_the_status_of_their_code_with_the_code_as_reason(
    requester, manager, catalog
):
    api = token_api(requester)
    body = {"entitlement": catalog["read"].pk, "justification": "on-call", "duration_days": 7}
    assert api.post("/api/v1/requests/", body).status_code == 201
    again = api.post("/api/v1/requests/", body)
    assert (again.status_code, again["Content-Type"]) == (409, PROBLEM)
    assert again.json()["reason"] == "duplicate-open-request"
    req = AccessRequest.objects.get()
    own = api.post(f"/api/v1/requests/{req.pk}/approve", {"reason": "me"})
    assert (own.status_code, own.json()["reason"]) == (403, "own-request")
    assert token_api(manager).post(f"/api/v1/requests/{req.pk}/approve", {}).status_code == 200
    late = token_api(manager).post(f"/api/v1/requests/{req.pk}/deny", {"reason": "no"})
    assert (late.status_code, late.json()["reason"]) == (409, "already-decided")


def test_the_status_comes_from_the_code_not_the_class_or_the_message():
    from access.outcomes import RefusalCode
    from portal.core.api import problem_exception_handler
    from portal.core.errors import ValidationError

    exc = ValidationError("no such words here", reason_code=RefusalCode.DUPLICATE_OPEN_REQUEST)
    response = problem_exception_handler(exc, {})
    assert response.status_code == 409
    assert response.data["reason"] == "duplicate-open-request"
    plain = problem_exception_handler(ValidationError("already has an open request"), {})
    assert plain.status_code == 400
    assert "reason" not in plain.data
