"""P1 access map: ordering (seriation / mined roles), the team comparison, the heatmap figure,
and who may open which map."""

from __future__ import annotations

import json

import plotly.graph_objects as go
import pytest

from patterns import charts
from patterns import matrix as mx
from patterns.models import MiningProposal, MiningRun
from patterns.selectors import service_access_matrix, team_access_matrix
from tests.conftest import make_user

from .support import catalog, give, people


# --- pure ------------------------------------------------------------------------------------
def test_frequency_seriation_puts_common_columns_first_and_groups_identical_rows():
    held = {1: {30}, 2: {10, 20}, 3: {10}, 4: {10, 20}, 5: set()}
    rows, cols, method = mx.seriate(held, rows=[1, 2, 3, 4, 5], cols=[30, 20, 10])
    assert method == "frequency"
    assert cols == [10, 20, 30]
    assert rows == [2, 4, 3, 1, 5]  # {10,20} twice, then {10}, then {30}, then nothing


def test_role_ordering_follows_the_largest_role_first():
    held = {1: {10}, 2: {10, 20, 30}, 3: {20, 30}, 4: {20, 30}}
    roles = [([2], [10]), ([1], [10]), ([2, 3, 4], [20, 30])]  # wrong order on purpose
    rows, cols, method = mx.seriate(held, rows=[1, 2, 3, 4], cols=[10, 20, 30], roles=roles)
    assert method == "roles"
    assert cols[:2] in ([20, 30], [30, 20]) and cols[2] == 10
    assert rows[:3] == [2, 3, 4] and rows[3] == 1


def test_compare_with_team_names_the_unusual_and_the_missing():
    held = {1: {10, 99}, 2: {10, 20}, 3: {10, 20}, 4: {10, 20}, 5: {10}}
    result = mx.compare_with_team(1, held, [1, 2, 3, 4, 5])
    assert result.teammates == 4
    assert [(line.entitlement_id, line.holders) for line in result.unusual] == [(99, 0)]
    assert [(line.entitlement_id, line.holders) for line in result.missing] == [(20, 3)]
    assert result.usual == 1


# --- selectors, figure, page -------------------------------------------------------------------
@pytest.fixture
def team_map(org, manager):
    _, ents = catalog(org["search"])
    team = people(org["payments"], 4, manager=manager)
    give(
        {
            team[0]: ["read", "logs"],
            team[1]: ["read", "logs"],
            team[2]: ["read", "logs", "admin"],
            team[3]: ["read"],
        },
        ents,
    )
    return team, ents


@pytest.mark.sqlite
@pytest.mark.django_db
def test_team_matrix_and_heatmap(org, team_map):
    team, ents = team_map
    matrix = team_access_matrix(team=org["payments"])

    assert len(matrix.rows) == 5  # 4 people + the manager (a member holding nothing)
    assert [c["label"] for c in matrix.cols] == ["pay-db:read", "pay-db:logs", "pay-db:admin"]
    assert matrix.rows[-1]["email"] == "manager@example.com"
    assert matrix.cells == 8
    fig = charts.access_heatmap(matrix, title="t")
    go.Figure(fig)  # a valid Plotly figure
    z = fig["data"][0]["z"]
    row = [r["email"] for r in matrix.rows].index(team[2].email)
    assert z[row] == [1, 1, 4]  # low, low, critical
    assert z[-1] == [0, 0, 0]


@pytest.mark.django_db
def test_team_matrix_follows_the_latest_mining_run(org, admin, team_map):
    team, ents = team_map
    run = MiningRun.objects.create(
        scope="team", team=org["payments"], status="done", requested_by=admin
    )
    MiningProposal.objects.create(
        run=run, index=1, user_ids=[team[2].pk], entitlement_ids=[ents["admin"].pk], cells=1
    )
    matrix = team_access_matrix(team=org["payments"])
    assert (matrix.method, matrix.run_id) == ("roles", run.pk)
    assert matrix.cols[0]["label"] == "pay-db:admin"
    assert matrix.rows[0]["email"] == team[2].email


@pytest.mark.django_db
def test_service_matrix_lists_the_holders(org, team_map):
    from access.models import Service

    matrix = service_access_matrix(service=Service.objects.get(slug="pay-db"))
    assert len(matrix.rows) == 4 and len(matrix.cols) == 3


@pytest.mark.sqlite
@pytest.mark.django_db
def test_map_page_draws_the_figure_and_compares_a_person(client, requester, team_map):
    team, _ = team_map
    client.force_login(requester)

    page = client.get("/patterns/map/teams/payments/", {"person": team[2].pk})

    assert page.status_code == 200
    body = page.content.decode()
    assert 'data-chart="chart-map"' in body and 'id="chart-map"' in body
    assert "vendor/plotly/plotly.min.js" in body and "cdn" not in body.lower()
    figure = json.loads(
        body.split('id="chart-map" type="application/json">')[1].split("</script>")[0]
    )
    assert figure["data"][0]["type"] == "heatmap"
    unusual = body.split('id="unusual"')[1].split("</article>")[0]
    assert "pay-db:admin" in unusual and "0 of 5 teammates" in unusual
    assert client.get("/patterns/map/teams/payments/", {"person": 999999}).status_code == 404
    assert client.get("/patterns/map/teams/payments/", {"person": "x"}).status_code == 404


@pytest.mark.django_db
def test_map_page_query_count_is_bounded(
    client, admin, org, team_map, django_assert_max_num_queries
):
    more = people(org["payments"], 20, prefix="more")
    give({p: ["read"] for p in more}, team_map[1])
    client.force_login(admin)
    with django_assert_max_num_queries(20):
        assert client.get("/patterns/map/teams/payments/").status_code == 200


MAP_CASES = [
    # (persona, url, expected)
    ("requester", "/patterns/map/teams/payments/", 200),  # member
    ("manager", "/patterns/map/teams/payments/", 200),  # lead and manager
    ("requester", "/patterns/map/teams/search/", 404),
    ("other_team_user", "/patterns/map/teams/payments/", 404),
    ("service_owner", "/patterns/map/teams/payments/", 404),
    ("service_owner", "/patterns/map/services/pay-db/", 200),  # search owns pay-db
    ("requester", "/patterns/map/services/pay-db/", 404),
    ("manager", "/patterns/map/services/pay-db/", 404),
    ("finance", "/patterns/map/teams/payments/", 404),  # finance sees costs, not access
    ("auditor", "/patterns/map/teams/payments/", 200),
    ("security", "/patterns/map/services/pay-db/", 200),
    ("admin", "/patterns/map/teams/other/", 200),
    ("admin", "/patterns/map/teams/no-such-team/", 404),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("persona", "url", "expected"), MAP_CASES)
def test_map_scoping_for_every_persona(client, request, team_map, persona, url, expected):
    client.force_login(request.getfixturevalue(persona))
    assert client.get(url).status_code == expected


@pytest.mark.django_db
def test_a_manager_of_someone_in_another_team_sees_that_team(client, org, manager):
    make_user("remote@example.com", team=org["other"], manager=manager)
    client.force_login(manager)
    assert client.get("/patterns/map/teams/other/").status_code == 200


@pytest.mark.django_db
def test_index_lists_only_what_the_viewer_may_map(client, requester, team_map):
    client.force_login(requester)
    page = client.get("/patterns/").content.decode()
    teams = page.split('id="team-maps"')[1].split("</ul>")[0]
    assert "/patterns/map/teams/payments/" in teams
    assert "/patterns/map/teams/other/" not in teams
    assert "/patterns/map/services/" not in page.split('id="service-maps"')[1].split("</ul>")[0]
    assert 'id="nav-patterns"' in page
