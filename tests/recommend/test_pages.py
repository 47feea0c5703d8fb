"""Pages: model status, the request panel, auto-approval candidates and adoptions."""

from __future__ import annotations

import pytest

from access import services as access_services
from audit.models import AuditEvent
from recommend.models import AutoApproveAdoption, RecommendationModel
from recommend.panels import recommendation_panel

pytestmark = pytest.mark.django_db


def _pending(person, entitlement):
    return access_services.access_request_submit(
        actor=person, principal=person, entitlement=entitlement, justification="need it"
    )


# --- status page ------------------------------------------------------------------------
@pytest.mark.sqlite
def test_status_page_without_model_says_why(client, admin):
    client.force_login(admin)
    response = client.get("/recommendations/")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="no-model"' in body
    assert "Not enough data: 0 decided requests (at least 50 are needed)" in body


@pytest.mark.sqlite
def test_status_page_shows_the_live_model(client, trained, auditor):
    client.force_login(auditor)
    body = client.get("/recommendations/").content.decode()
    assert 'id="live-model"' in body
    assert "v1, trained" in body
    assert "60 decisions (36 approved)" in body
    assert "Retrain now" not in body  # auditors read, admins act


@pytest.mark.parametrize("persona", ["requester", "manager", "service_owner", "finance"])
def test_status_page_is_for_admins_security_auditors(client, request, persona):
    client.force_login(request.getfixturevalue(persona))
    assert client.get("/recommendations/").status_code == 403


def test_retrain_button(client, history, admin, requester):
    client.force_login(requester)
    assert client.post("/recommendations/train/").status_code == 403
    assert RecommendationModel.objects.count() == 0
    client.force_login(admin)
    response = client.post("/recommendations/train/")
    assert response.status_code == 302
    assert RecommendationModel.objects.get().version == 1
    assert client.get("/recommendations/train/").status_code == 405


# --- the request panel --------------------------------------------------------------------
@pytest.mark.sqlite
def test_panel_shows_probability_and_reasons_to_the_approver(
    client, trained, payments_people, read, manager
):
    req = _pending(payments_people[1], read)
    client.force_login(manager)  # the manager stage's approver
    body = client.get(f"/requests/{req.pk}/").content.decode()
    assert 'id="recommendation-probability"' in body
    panel = recommendation_panel(request=req, viewer=manager)
    score = panel.context["score"]
    assert score.probability > 0.8 and score.model_version == 1
    texts = [r["text"] for r in score.reasons]
    assert texts and all(r["direction"] in ("for", "against") for r in score.reasons)
    assert any("were approved" in t or "teammates hold it" in t for t in texts)
    assert texts[0] in body


def test_panel_reason_wording(trained, payments_people, read, manager):
    req = _pending(payments_people[1], read)
    texts = [
        r["text"]
        for r in recommendation_panel(request=req, viewer=manager).context["score"].reasons
    ]
    wordings = {
        "requests for billing:read from team payments were approved 36/36",
        "requests from team payments were approved 36/36",
        "requests from manager@example.com's reports were approved 36/36",
        "requests for billing:read from manager@example.com's reports were approved 36/36",
    }
    assert wordings & set(texts), texts


def test_panel_hidden_from_requester_and_other_team(
    client, trained, payments_people, read, other_team_user
):
    me = payments_people[1]
    req = _pending(me, read)
    assert recommendation_panel(request=req, viewer=me) is None
    assert recommendation_panel(request=req, viewer=other_team_user) is None
    client.force_login(me)
    body = client.get(f"/requests/{req.pk}/").content.decode()
    assert "recommendation-probability" not in body and "Recommendation" not in body
    client.force_login(other_team_user)
    assert client.get(f"/requests/{req.pk}/").status_code == 404


def test_panel_without_model_says_so(client, payments_people, read, manager):
    req = _pending(payments_people[1], read)
    client.force_login(manager)
    body = client.get(f"/requests/{req.pk}/").content.decode()
    assert 'id="recommendation-none"' in body
    assert "0 decided requests (at least 50 are needed)" in body


def test_score_is_cached_per_model_version(
    trained, payments_people, read, manager, django_assert_max_num_queries
):
    req = _pending(payments_people[1], read)
    first = recommendation_panel(request=req, viewer=manager).context["score"]
    from recommend.selectors import request_score

    with django_assert_max_num_queries(1):  # the live-model lookup only
        again = request_score(request=req)
    assert again.probability == first.probability


def test_panel_not_shown_once_decided(trained, payments_people, read, manager):
    req = _pending(payments_people[1], read)
    access_services.access_request_approve(actor=manager, request_id=req.pk)
    req.refresh_from_db()
    assert req.status == "approved"
    assert recommendation_panel(request=req, viewer=manager) is None


# --- candidates and adoptions --------------------------------------------------------------
def test_candidates_page_lists_what_the_model_would_auto_approve(
    client, trained, payments_people, other_people, read, admin
):
    good = _pending(payments_people[1], read)
    bad = _pending(other_people[1], read)
    client.force_login(admin)
    response = client.get("/recommendations/candidates/")
    assert response.status_code == 200
    body = response.content.decode()
    assert f'href="/requests/{good.pk}/"' in body
    assert f'href="/requests/{bad.pk}/"' not in body
    assert "1 of 2 pending" in body


@pytest.mark.parametrize("persona", ["requester", "manager", "security", "auditor"])
def test_candidates_page_is_admin_only(client, request, persona, trained):
    client.force_login(request.getfixturevalue(persona))
    assert client.get("/recommendations/candidates/").status_code == 403
    assert client.post("/recommendations/candidates/", {}).status_code == 403


def test_admin_adopts_then_changes_audited(client, admin, trained):
    from access.models import ApprovalPolicy

    policy = ApprovalPolicy.objects.create(slug="standard", name="Standard")
    client.force_login(admin)
    form = {"policy": policy.pk, "min_probability": "0.99", "max_risk": "low", "enabled": "on"}
    assert client.post("/recommendations/candidates/", form).status_code == 302
    adoption = AutoApproveAdoption.objects.get()
    assert (str(adoption.min_probability), adoption.max_risk, adoption.enabled) == (
        "0.9900",
        "low",
        True,
    )
    created = AuditEvent.objects.get(action="recommend.adoption_created")
    assert created.after == {
        "policy": "standard",
        "min_probability": "0.9900",
        "max_risk": "low",
        "enabled": True,
    }
    # Same values again: nothing changes, nothing is audited.
    client.post("/recommendations/candidates/", form)
    assert not AuditEvent.objects.filter(action="recommend.adoption_changed").exists()
    client.post("/recommendations/candidates/", {**form, "max_risk": "medium", "enabled": ""})
    changed = AuditEvent.objects.get(action="recommend.adoption_changed")
    assert changed.before["max_risk"] == "low" and changed.after["max_risk"] == "medium"
    assert changed.after["enabled"] is False
    assert AutoApproveAdoption.objects.count() == 1


@pytest.mark.parametrize("bad", ["0.3", "1.5", "lots", "NaN"])
def test_bad_probability_is_refused_and_changes_nothing(client, admin, bad):
    from access.models import ApprovalPolicy

    policy = ApprovalPolicy.objects.create(slug="standard", name="Standard")
    client.force_login(admin)
    audit_before = AuditEvent.objects.count()
    response = client.post(
        "/recommendations/candidates/",
        {"policy": policy.pk, "min_probability": bad, "max_risk": "low", "enabled": "on"},
    )
    assert response.status_code == 400
    assert "min probability must be" in response.content.decode()
    assert AutoApproveAdoption.objects.count() == 0
    assert AuditEvent.objects.count() == audit_before


def test_only_admins_adopt(client, security, requester):
    from access.models import ApprovalPolicy
    from portal.core.errors import NotPermitted
    from recommend.services import adoption_save

    policy = ApprovalPolicy.objects.create(slug="standard", name="Standard")
    for user in (security, requester):
        with pytest.raises(NotPermitted):
            adoption_save(
                actor=user, policy=policy, min_probability="0.99", max_risk="low", enabled=True
            )
        client.force_login(user)
        response = client.post(
            "/recommendations/candidates/",
            {"policy": policy.pk, "min_probability": "0.99", "max_risk": "low", "enabled": "on"},
        )
        assert response.status_code == 403
    assert AutoApproveAdoption.objects.count() == 0
    assert not AuditEvent.objects.filter(action__startswith="recommend.adoption").exists()


@pytest.mark.sqlite
def test_nav_link_only_for_those_who_may_see_the_model(client, admin, requester):
    client.force_login(admin)
    assert 'id="nav-recommendations"' in client.get("/catalog/").content.decode()
    client.force_login(requester)
    assert 'id="nav-recommendations"' not in client.get("/catalog/").content.decode()


def test_security_sees_the_panel_too(trained, payments_people, read, security):
    req = _pending(payments_people[1], read)
    panel = recommendation_panel(request=req, viewer=security)
    assert panel is not None and panel.context["score"].probability > 0.5


def test_candidates_page_query_count_is_bounded(
    client, trained, payments_people, read, admin, django_assert_max_num_queries
):
    for person in payments_people[1:]:
        _pending(person, read)
    client.force_login(admin)
    with django_assert_max_num_queries(25):
        response = client.get("/recommendations/candidates/")
    assert response.content.decode().count('<td><a href="/requests/') == 5
