"""The cost of one SCIM create (an IdP's initial push is thousands of them): the number of SQL
statements is pinned, so a regression (a re-read, a query per level of the hierarchy, a lookup
more) fails here; and the 201 body, built from the rows just written, is what a GET returns."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Membership, User
from audit.models import AuditEvent
from tests.conftest import make_user

from .conftest import user_body

pytestmark = pytest.mark.django_db

# One SCIM POST /Users of a new person with a department and a manager, in the test
# transaction (so BEGIN/COMMIT are a SAVEPOINT and its RELEASE): the token; the department's
# teams and the manager (one statement); savepoint; directory lock; the teams named; the people
# named with their manager chains; INSERT person (manager set); INSERT home membership; audit
# user.created; standard-bundle look-up; audit directory.imported; the SCIM row (upsert) with
# the person's groups for the 201 body; release. It was 26 before this was pinned.
CREATE_STATEMENTS = 13


def _create(scim, email: str, **extra):
    with CaptureQueriesContext(connection) as ctx:
        response = scim(
            "POST",
            "Users",
            user_body(email, name="New Person", department="payments", **extra),
        )
    assert response.status_code == 201, response.doc
    return response, [q["sql"] for q in ctx.captured_queries]


def test_one_create_costs_a_pinned_number_of_statements(scim, org, manager):
    _create(scim, "warm@example.com", manager=manager.pk)  # the chain head is read once
    response, statements = _create(scim, "ann@example.com", manager=manager.pk)

    assert len(statements) == CREATE_STATEMENTS, "\n".join(statements)
    user = User.objects.get(email="ann@example.com")
    assert (user.manager, user.team) == (manager, org["payments"])
    assert Membership.objects.filter(user=user, team=org["payments"], role="member").exists()
    assert list(
        AuditEvent.objects.filter(target_id=str(user.pk)).values_list("action", flat=True)
    ) == ["user.created"]
    # The manager is set in the INSERT (no UPDATE of the new row) and nothing written is read
    # back by e-mail.
    assert not [s for s in statements if s.startswith('UPDATE "accounts_user"')]
    assert not [s for s in statements if 'WHERE "accounts_user"."email" =' in s]


def test_a_deep_management_chain_costs_no_statement_more(scim, org, manager):
    boss = manager
    for level in range(6):  # seven levels above the new person
        boss = make_user(f"level{level}@example.com", team=org["payments"], manager=boss)
    _create(scim, "warm@example.com", manager=manager.pk)
    _, shallow = _create(scim, "shallow@example.com", manager=manager.pk)
    _, deep = _create(scim, "deep@example.com", manager=boss.pk)

    assert len(deep) == len(shallow)
    assert User.objects.get(email="deep@example.com").manager == boss


def test_the_201_body_is_what_a_get_returns(scim, org, manager):
    created, _ = _create(
        scim, "bo@example.com", manager=manager.pk, externalId="00u9", employeeNumber="E-9"
    )
    fetched = scim("GET", f"Users/{created.doc['id']}")

    assert fetched.status_code == 200
    assert created.doc == fetched.doc
    assert created["ETag"] == fetched["ETag"]
    assert created.doc["groups"] == [
        {
            "value": str(org["payments"].pk),
            "$ref": f"http://testserver/scim/v2/Groups/{org['payments'].pk}",
            "display": org["payments"].name,
        }
    ]


def test_a_scim_deleted_person_created_again_is_read_back_with_their_first_created_time(
    scim, org, requester, clock
):
    first = scim("POST", "Users", user_body("back@example.com", department="payments"))
    assert scim("DELETE", f"Users/{first.doc['id']}").status_code == 204
    clock.shift(3600)

    again = scim("POST", "Users", user_body("back@example.com", department="payments"))

    assert again.status_code == 201, again.doc
    assert again.doc["meta"]["created"] == first.doc["meta"]["created"]
    assert again.doc["meta"]["lastModified"] > first.doc["meta"]["lastModified"]
    assert again.doc == scim("GET", f"Users/{first.doc['id']}").doc


def test_department_and_manager_are_looked_up_together_with_the_same_answers(scim, org, manager):
    from tests.conftest import make_team

    named = make_team("pay-team")  # slug "pay-team"; its name is what the department says
    named.name = "Payments Squad"
    named.save(update_fields=["name"])
    by_name = scim(
        "POST", "Users", user_body("n@example.com", department="payments squad", manager=manager.pk)
    )
    by_slug = scim(
        "POST", "Users", user_body("s@example.com", department="PAYMENTS", manager=manager.pk)
    )
    new_team = scim(
        "POST", "Users", user_body("t@example.com", department="Brand New", manager=manager.pk)
    )
    before = (User.objects.count(), AuditEvent.objects.count())
    unknown = scim(
        "POST", "Users", user_body("u@example.com", department="payments", manager=999999)
    )
    too_big = scim(
        "POST", "Users", user_body("v@example.com", department="payments", manager=10**20)
    )
    not_an_id = scim(
        "POST", "Users", user_body("w@example.com", department="payments", manager="boss")
    )

    assert [r.status_code for r in (by_name, by_slug, new_team)] == [201, 201, 201]
    assert User.objects.get(email="n@example.com").team == named
    assert User.objects.get(email="s@example.com").team == org["payments"]
    assert User.objects.get(email="t@example.com").team.slug == "brand-new"
    assert {
        u.manager for u in User.objects.filter(email__in=["n@example.com", "t@example.com"])
    } == {manager}
    assert unknown.status_code == 400
    assert unknown.doc["detail"] == "manager '999999' is not a known User"
    assert too_big.status_code == 400
    assert too_big.doc["detail"] == f"manager '{10**20}' is not a known User"
    assert not_an_id.status_code == 400
    assert not_an_id.doc["detail"] == "manager 'boss' is not a User id"
    assert (User.objects.count(), AuditEvent.objects.count()) == before
