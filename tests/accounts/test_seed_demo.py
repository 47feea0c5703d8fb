"""seed_demo: deterministic demo people through the directory import, refused outside the demo."""

from __future__ import annotations

import random
import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from accounts.models import Membership, Team, TeamMove, User
from audit.models import AuditEvent
from demo.management.commands import seed_demo
from demo.steps import accounts as demo

FULL_STEPS = list(seed_demo.DEMO_STEPS)  # as configured (the fixture below shrinks costs)


def snapshot():
    return (
        User.objects.count(),
        Team.objects.count(),
        Membership.objects.count(),
        TeamMove.objects.count(),
        AuditEvent.objects.count(),
        list(User.objects.values_list("email", "password", "status", "team__slug", "manager_id")),
    )


@pytest.fixture(autouse=True)
def small_demo(monkeypatch):
    """The whole seed_demo runs, with a smaller access history and fewer months of costs
    (the full sizes are exercised by `make run`; each step's own test checks its data)."""
    from demo.steps import access, costs

    monkeypatch.setattr(access, "HISTORY_REQUESTS", 80)

    def seed_costs(*, stdout, rng):
        return costs.seed_costs(stdout=stdout, rng=rng, months=3, resources_per_team=2)

    steps = [
        seed_demo.Step("costs", seed_costs) if step.name == "costs" else step
        for step in seed_demo.DEMO_STEPS
    ]
    monkeypatch.setattr(seed_demo, "DEMO_STEPS", steps)


@pytest.mark.sqlite
@pytest.mark.django_db
def test_seed_demo_creates_the_demo_org_accounts_and_a_verifiable_trail(client):
    out = StringIO()
    call_command("seed_demo", stdout=out)

    last_month, today, leads = demo.build_directory(random.Random(seed_demo.SEED))
    assert User.objects.count() == len(today) == len(last_month)
    assert 280 <= User.objects.count() <= 320
    assert Team.objects.count() == 25
    assert Team.objects.filter(parent=None).count() == 2
    assert Team.objects.get(slug="payments").parent.parent.slug == "engineering"
    assert User.objects.filter(status="leaver", is_active=False).count() == 5
    assert TeamMove.objects.count() == 3
    contractors = User.objects.filter(worker_type="contractor").count()
    assert 0.05 * len(today) <= contractors <= 0.15 * len(today)

    engineer = User.objects.get(email="engineer@tollgate.test")
    manager = User.objects.get(email="manager@tollgate.test")
    assert engineer.team.slug == "payments" and engineer.manager == manager
    assert Membership.objects.get(team__slug="payments", user=manager).role == "lead"
    platform_lead = User.objects.get(email=leads["platform"])
    assert manager.manager == platform_lead
    assert Membership.objects.get(team__slug="platform", user=platform_lead).role == "lead"
    assert User.objects.get(email="owner@tollgate.test").team.slug == "search"
    roles = {
        email: sorted(User.objects.get(email=email).groups.values_list("name", flat=True))
        for email in demo.DEMO_EMAILS
    }
    assert roles == {
        "manager@tollgate.test": [],
        "engineer@tollgate.test": [],
        "owner@tollgate.test": [],
        "security@tollgate.test": ["security"],
        "admin@tollgate.test": ["platform-admin"],
        "finance@tollgate.test": ["finance"],
        "auditor@tollgate.test": ["auditor"],
    }
    # A real audit trail: the people came through the directory import.
    assert AuditEvent.objects.filter(action="user.created").count() == len(today)
    assert AuditEvent.objects.filter(action="user.left").count() == 5
    assert AuditEvent.objects.filter(action="user.moved").count() == 3
    assert AuditEvent.objects.filter(action="directory.imported").count() == 2
    assert "demo data ready" in out.getvalue()

    verify = StringIO()
    call_command("verify_audit", stdout=verify)
    assert "audit chain OK" in verify.getvalue()

    response = client.post(
        reverse("account_login"),
        {"login": "engineer@tollgate.test", "password": demo.DEMO_PASSWORD},
    )
    assert response.status_code == 302
    home = client.get("/")
    assert home.status_code == 200
    assert "manager@tollgate.test" in home.content.decode()


@pytest.mark.sqlite
@pytest.mark.django_db
def test_the_demo_shows_unused_paid_seats_by_the_unused_access_rule():
    """C7 on first start: the seat suggestions are exactly P4's unused grants that cost a seat."""
    from costs.analytics.models import Suggestion
    from usage.rules import unused_grants

    out = StringIO()
    call_command("seed_demo", stdout=out)
    paid_unused = set(
        unused_grants().filter(entitlement__seat_cost_monthly__gt=0).values_list("pk", flat=True)
    )
    seats = Suggestion.objects.filter(kind=Suggestion.Kind.UNUSED_SEAT)
    assert paid_unused and {s.evidence["grant_id"] for s in seats} == paid_unused
    assert all(s.estimated_monthly_saving > 0 and s.status == "open" for s in seats)
    assert f"({len(paid_unused)} unused paid seats)" in out.getvalue()


@pytest.mark.sqlite
@pytest.mark.django_db
def test_seed_demo_if_empty_and_a_plain_rerun_change_nothing():
    call_command("seed_demo", stdout=StringIO())
    before = snapshot()

    out = StringIO()
    call_command("seed_demo", "--if-empty", stdout=out)
    assert "already present" in out.getvalue()
    assert snapshot() == before

    out = StringIO()
    call_command("seed_demo", stdout=out)
    rows = len(demo.build_directory(random.Random(seed_demo.SEED))[1])
    assert f"people (today's directory): {rows} rows read; no changes" in out.getvalue()
    assert snapshot() == before


@pytest.mark.django_db
def test_seed_demo_refuses_when_the_demo_is_not_allowed(settings):
    settings.DEMO_ALLOWED = False

    with pytest.raises(CommandError, match="DEMO_ALLOWED is false"):
        call_command("seed_demo", stdout=StringIO())

    assert User.objects.count() == 0
    assert AuditEvent.objects.count() == 0


@pytest.mark.django_db
def test_seed_demo_refuses_an_unknown_step_before_writing_anything():
    with pytest.raises(CommandError) as refused:
        call_command("seed_demo", "--step", "people", "--step", "nope", stdout=StringIO())

    assert str(refused.value) == (
        "unknown demo step(s): nope; the steps are: people, access, provisioning, usage, "
        "costs, reviews, patterns, standards, recommend, ldap"
    )
    assert User.objects.count() == 0
    assert AuditEvent.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    "steps, message",
    [
        (["accounts.demo.seed_people"], "DEMO_STEPS[1] is 'accounts.demo.seed_people', not a Step"),
        ([seed_demo.Step("people", None)], "DEMO_STEPS[1] is Step(name='people', run=None)"),
        (
            [seed_demo.DEMO_STEPS[0], seed_demo.DEMO_STEPS[0]],
            "DEMO_STEPS names the step 'people' twice",
        ),
    ],
)
def test_a_misconfigured_step_list_fails_loudly_before_any_step_runs(monkeypatch, steps, message):
    monkeypatch.setattr(seed_demo, "DEMO_STEPS", steps)

    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("seed_demo", stdout=StringIO())

    assert User.objects.count() == 0
    assert AuditEvent.objects.count() == 0


@pytest.mark.django_db
def test_seed_demo_runs_only_the_steps_it_is_given():
    out = StringIO()
    call_command("seed_demo", "--step", "people", stdout=out)

    assert out.getvalue().startswith("people:\n")
    assert "access:" not in out.getvalue()
    assert User.objects.filter(email="engineer@tollgate.test").exists()
    assert not AuditEvent.objects.filter(action__startswith="service.").exists()


def test_every_step_is_an_imported_callable_in_the_demo_app():
    assert [step.name for step in FULL_STEPS] == [
        "people",
        "access",
        "provisioning",
        "usage",
        "costs",
        "reviews",
        "patterns",
        "standards",
        "recommend",
        "ldap",
    ]
    assert all(
        callable(step.run) and step.run.__module__.startswith("demo.steps.") for step in FULL_STEPS
    )


def test_the_demo_directory_is_deterministic():
    first = demo.build_directory(random.Random(seed_demo.SEED))
    second = demo.build_directory(random.Random(seed_demo.SEED))
    assert first == second
    last_month, today, leads = first
    assert len(leads) == 25
    assert len({p.email for p in today}) == len(today)
    assert leads["payments"] == "manager@tollgate.test"
