"""P3 outliers: scores on hand-built data (pure), then the viewer-scoped selector and page."""

from __future__ import annotations

import pytest

from access.models import Grant
from audit.models import AuditEvent
from patterns import outliers as ol
from patterns.selectors import outliers_for_viewer
from tests.access.factories import grant_directly, make_entitlement, make_service
from tests.conftest import make_user

from .support import catalog, give, people


# --- pure scoring -------------------------------------------------------------------------
def test_rare_everywhere_is_an_outlier_with_a_risk_weighted_score_and_explanation():
    groups = [
        ol.PeerGroup("team", "teammates", 14, {7: 1}),
        ol.PeerGroup("manager", "people under Dana", 20, {7: 2}),
        ol.PeerGroup("worker_type", "employees", 100, {7: 3}),
    ]
    finding = ol.score_access(
        entitlement_id=7, entitlement_label="payments-db:admin", risk="critical", groups=groups
    )
    assert finding is not None
    # the largest share is 2/20 = 0.1 -> (1 - 0.1) x 1.0
    assert finding.share == 0.1
    assert finding.score == 0.9
    assert finding.explanations == [
        "1 of 14 teammates holds payments-db:admin",
        "2 of 20 people under Dana hold payments-db:admin",
        "3 of 100 employees hold payments-db:admin",
    ]


def test_common_in_any_one_group_is_not_an_outlier():
    groups = [
        ol.PeerGroup("team", "teammates", 10, {7: 0}),
        ol.PeerGroup("worker_type", "contractors", 10, {7: 6}),
    ]
    assert (
        ol.score_access(entitlement_id=7, entitlement_label="x", risk="high", groups=groups) is None
    )


def test_risk_weights_order_the_scores():
    group = [ol.PeerGroup("team", "teammates", 10, {})]
    scores = {
        risk: ol.score_access(
            entitlement_id=1, entitlement_label="x", risk=risk, groups=group
        ).score
        for risk in ("low", "medium", "high", "critical")
    }
    assert scores == {"low": 0.4, "medium": 0.6, "high": 0.85, "critical": 1.0}


def test_too_few_peers_prove_nothing():
    groups = [ol.PeerGroup("team", "teammates", 2, {}), ol.PeerGroup("x", "y", 0, {})]
    assert (
        ol.score_access(entitlement_id=1, entitlement_label="x", risk="low", groups=groups) is None
    )


def test_jaccard_distance_and_common_set():
    held = {1: {10, 11}, 2: {10, 11}, 3: {10, 12, 13}, 4: set()}
    assert ol.common_set(held, [1, 2, 3, 4]) == {10, 11}
    assert ol.jaccard_distance({10, 11}, {10, 11}) == 0.0
    assert ol.jaccard_distance({10, 12, 13}, {10, 11}) == 0.75
    assert ol.jaccard_distance(set(), {10, 11}) == 1.0
    assert ol.jaccard_distance(set(), set()) == 0.0


# --- the selector on a hand-built org ------------------------------------------------------
@pytest.fixture
def payments_team(org, manager):
    """manager leads payments; 6 reports: all hold read, 5 hold logs, p5 also holds admin."""
    _, ents = catalog(org["search"])
    team = people(org["payments"], 6, manager=manager)
    matrix = {p: ["read", "logs"] for p in team[:5]}
    matrix[team[5]] = ["read", "admin"]
    grants = give(matrix, ents)
    return {"people": team, "ents": ents, "grants": grants}


@pytest.mark.sqlite
@pytest.mark.django_db
def test_manager_sees_the_one_unusual_admin_grant_with_its_explanation(manager, payments_team):
    report = outliers_for_viewer(viewer=manager)

    p5 = payments_team["people"][5]
    assert [(o.person["email"], o.entitlement["label"]) for o in report.outliers] == [
        (p5.email, "pay-db:admin")
    ]
    top = report.outliers[0]
    # 6 payments people (+ the manager, a teammate holding nothing): 0 of 6 teammates,
    # 0 of 5 other reports of the manager, 0 of 6 other employees hold it.
    assert top.explanations == [
        "0 of 6 teammates hold pay-db:admin",
        "0 of 5 people under Manager hold pay-db:admin",
        "0 of 6 employees hold pay-db:admin",
    ]
    assert top.score == 1.0
    assert top.grant_id == Grant.objects.get(principal=p5, entitlement__slug="admin").pk
    # p5 differs most from the team's common set {read, logs}
    assert report.distances[0].person["email"] == p5.email
    assert report.distances[0].distance == pytest.approx(0.667, abs=0.001)
    assert (report.distances[0].extra, report.distances[0].lacking) == (1, 1)


@pytest.mark.django_db
def test_service_owner_sees_outliers_of_their_services_only(service_owner, org, payments_team):
    # another service, not owned by search: invisible to the owner
    other = make_entitlement(make_service(org["other"], slug="elsewhere"), slug="root", risk="high")
    grant_directly(payments_team["people"][0], other)

    report = outliers_for_viewer(viewer=service_owner)

    assert {o.entitlement["service"] for o in report.outliers} == {"pay-db"}
    assert report.distances == []  # not their reports: no whole-access comparison


@pytest.mark.django_db
def test_people_without_reports_or_services_see_nothing(other_team_user, payments_team):
    report = outliers_for_viewer(viewer=other_team_user)
    assert (report.outliers, report.distances, report.subjects) == ([], [], 0)


@pytest.mark.django_db
def test_outlier_page_scopes_by_team_and_offers_review_and_revoke(
    client, admin, org, payments_team
):
    client.force_login(admin)

    page = client.get("/patterns/outliers/", {"team": "payments"})

    assert page.status_code == 200
    grant = Grant.objects.get(principal=payments_team["people"][5], entitlement__slug="admin")
    body = page.content.decode()
    assert f'id="outlier-{grant.pk}"' in body
    assert f"/grants/{grant.pk}/" in body  # review: the grant page
    assert f"/patterns/outliers/grants/{grant.pk}/revoke/" in body
    assert client.get("/patterns/outliers/", {"team": "nope"}).status_code == 404


@pytest.mark.django_db
def test_one_click_revoke_goes_through_grant_revoke_with_the_reason(client, admin, payments_team):
    grant = Grant.objects.get(principal=payments_team["people"][5], entitlement__slug="admin")
    client.force_login(admin)

    response = client.post(
        f"/patterns/outliers/grants/{grant.pk}/revoke/",
        {
            "reason": "nobody else on the team needs admin",
            "next": "/patterns/outliers/?team=payments",
        },
    )

    assert response.status_code == 302
    assert response["Location"] == "/patterns/outliers/?team=payments"
    grant.refresh_from_db()
    assert grant.status == Grant.Status.REVOKED
    assert grant.revoke_reason == "nobody else on the team needs admin"
    event = AuditEvent.objects.filter(action="grant.revoke", target_id=str(grant.pk)).get()
    assert event.reason == "nobody else on the team needs admin"


@pytest.mark.django_db
def test_revoke_without_a_reason_changes_nothing(client, admin, payments_team):
    grant = Grant.objects.get(principal=payments_team["people"][5], entitlement__slug="admin")
    client.force_login(admin)
    events = AuditEvent.objects.count()

    response = client.post(f"/patterns/outliers/grants/{grant.pk}/revoke/", {"reason": "  "})

    assert response.status_code == 302
    grant.refresh_from_db()
    assert grant.status == Grant.Status.ACTIVE
    assert AuditEvent.objects.count() == events


@pytest.mark.django_db
def test_revoke_refused_for_who_may_not(client, manager, other_team_user, payments_team):
    grant = Grant.objects.get(principal=payments_team["people"][5], entitlement__slug="admin")
    url = f"/patterns/outliers/grants/{grant.pk}/revoke/"
    events = AuditEvent.objects.filter(target_type="access.grant").count()

    client.force_login(other_team_user)  # cannot see the grant at all
    assert client.post(url, {"reason": "because"}).status_code == 404
    client.force_login(manager)  # sees it (a report's) but access lets only owners/admins revoke
    page = client.get("/patterns/outliers/")
    assert f'id="outlier-{grant.pk}"' in page.content.decode()
    assert url not in page.content.decode()  # no revoke button, only review
    assert client.post(url, {"reason": "because"}).status_code == 403

    grant.refresh_from_db()
    assert grant.status == Grant.Status.ACTIVE
    assert AuditEvent.objects.filter(target_type="access.grant").count() == events


@pytest.mark.django_db
def test_worker_type_is_a_peer_group(org, admin):
    """Contractors: access common among contractors elsewhere is not unusual."""
    _, ents = catalog(org["search"])
    team = people(org["payments"], 4, prefix="emp")
    contractor = make_user("c0@example.com", team=org["payments"], worker_type="contractor")
    others = people(org["other"], 3, prefix="oc", worker_type="contractor")
    give({p: ["read"] for p in team}, ents)
    give({contractor: ["read", "logs"], **{p: ["logs"] for p in others}}, ents)

    report = outliers_for_viewer(viewer=admin, team=org["payments"])

    assert [o.entitlement["label"] for o in report.outliers] == []


@pytest.mark.django_db
def test_outlier_page_query_count_does_not_grow_with_rows(
    client, service_owner, org, payments_team, django_assert_max_num_queries
):
    # more unusual grants on the owner's service: one policy answer per service, not per row
    extra = people(org["payments"], 10, prefix="x")
    give({p: ["read", "logs"] for p in extra}, payments_team["ents"])
    give({extra[0]: ["deploy"], extra[1]: ["write"]}, payments_team["ents"])
    client.force_login(service_owner)
    with django_assert_max_num_queries(23):  # 20, and the header menus' counts
        page = client.get("/patterns/outliers/")
    assert page.status_code == 200
    assert page.content.decode().count("/revoke/") == 3  # admin, deploy, write
