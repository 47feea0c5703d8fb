"""Invalid trees are refused with file, line and reason; an entitlement with grants is retired,
not deleted; a managed object cannot be edited in the UI (or is reported as drift)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from access.models import Entitlement, Grant, Service
from audit.models import AuditEvent
from costs.analytics.services import budget_set
from gitops.services import config_apply, config_plan
from gitops.tree import ConfigInvalid
from portal.core.errors import NotPermitted
from tests.access.factories import grant_directly
from tests.factories import PASSWORD

from .conftest import SERVICE


def _problems(root) -> list[str]:
    with pytest.raises(ConfigInvalid) as exc:
        config_plan(root=root)
    return [str(p) for p in exc.value.problems]


@pytest.mark.django_db
def test_yaml_syntax_error_names_file_and_line(tree, org):
    tree.write("services/billing-db.yaml", "slug: billing-db\nname: [unclosed\nowner_team: x\n")
    (problem,) = _problems(tree.root)
    assert problem.startswith("services/billing-db.yaml:3: YAML syntax error")


@pytest.mark.django_db
def test_schema_errors_name_file_line_and_field(tree, org):
    tree.write("services/billing-db.yaml", SERVICE.replace("risk: high", "risk: extreme"))
    tree.write("policies.yaml", "policies:\n  - slug: p\n    name: P\n    colour: red\n")
    problems = _problems(tree.root)
    assert (
        "policies.yaml:2: policies/0: Additional properties are not allowed ('colour' was "
        "unexpected)" in problems
    )
    assert any(
        p.startswith("services/billing-db.yaml:10: entitlements/1/risk: 'extreme' is not one of")
        for p in problems
    ), problems


@pytest.mark.django_db
def test_unknown_references_and_duplicates_are_named(tree, org):
    tree.write(
        "services/billing-db.yaml",
        SERVICE.replace("owner_team: search", "owner_team: nobody").replace(
            "prerequisites: [billing-db/read]", "prerequisites: [billing-db/nope]"
        ),
    )
    tree.write(
        "toxic_pairs.yaml", "toxic_pairs:\n  - {first: a/b, second: billing-db/read, reason: r}\n"
    )
    tree.write("notes.txt", "hello")
    problems = _problems(tree.root)
    assert "services/billing-db.yaml:3: no team 'nobody'" in problems
    assert "services/billing-db.yaml:11: no policy 'two-step'" in problems
    assert (
        "services/billing-db.yaml:12: prerequisite 'billing-db/nope' is not an entitlement of "
        "the configuration" in problems
    )
    assert "toxic_pairs.yaml:2: no entitlement 'a/b'" in problems
    assert any(p.startswith("notes.txt:1: unknown file") for p in problems)
    assert not Service.objects.exists()


@pytest.mark.django_db
def test_a_secret_in_connector_config_is_refused(tree, org):
    tree.write(
        "services/billing-db.yaml",
        "slug: billing-db\nname: B\nowner_team: search\nconnector_config:\n  password: hunter2\n",
    )
    (problem,) = _problems(tree.root)
    assert problem.startswith("services/billing-db.yaml:5:") and "password" in problem


@pytest.mark.django_db
def test_an_entitlement_with_grants_is_retired_and_its_grants_fate_shown(
    base_tree, repo, requester, manager
):
    plan = config_plan(root=base_tree.root)
    config_apply(actor=repo, root=base_tree.root, plan_hash=plan.hash)
    read = Entitlement.objects.get(slug="read")
    held = grant_directly(requester, read)
    past = grant_directly(manager, read, status="revoked")

    base_tree.write("toxic_pairs.yaml", "toxic_pairs: []\n")
    base_tree.write(
        "services/billing-db.yaml",
        SERVICE.replace("        prerequisites: [billing-db/read]\n", "").replace(
            "      - slug: read\n        name: Read\n", ""
        ),
    )
    plan = config_plan(root=base_tree.root)
    (change,) = [c for c in plan.changes if c.key == "billing-db/read"]
    assert change.op == "delete"
    assert change.note == (
        "retired, not deleted (its history refers to it): 1 held grant(s) revoked "
        "(requester@example.com); 1 past grant(s) kept"
    )
    assert "- entitlement billing-db/read: retired, not deleted" in plan.render()
    config_apply(actor=repo, root=base_tree.root, plan_hash=plan.hash)
    read.refresh_from_db()
    assert read.retired_at is not None and not read.requestable
    assert Grant.objects.get(pk=held.pk).status == "revoked"
    assert Grant.objects.get(pk=past.pk).status == "revoked"
    assert AuditEvent.objects.filter(
        action="entitlement.retired", actor_label="gitops:platform-config"
    ).exists()
    assert config_plan(root=base_tree.root).changes == []  # retired is out of the config

    # listed again: it comes back
    base_tree.write("services/billing-db.yaml", SERVICE)
    plan = config_plan(root=base_tree.root)
    assert ("create", "billing-db/read") in {(c.op, c.key) for c in plan.changes}
    config_apply(actor=repo, root=base_tree.root, plan_hash=plan.hash)
    read.refresh_from_db()
    assert read.retired_at is None and read.requestable


@pytest.mark.django_db
def test_ui_edit_of_a_managed_entitlement_is_refused_with_a_pointer(
    base_tree, repo, admin, client, settings
):
    settings.GITOPS_REPOSITORY_URL = "https://git.example.com/platform/tollgate-config"
    plan = config_plan(root=base_tree.root)
    config_apply(actor=repo, root=base_tree.root, plan_hash=plan.hash)
    write = Entitlement.objects.get(slug="write")
    client.login(email=admin.email, password=PASSWORD)
    events = AuditEvent.objects.count()
    response = client.post(
        reverse("access:entitlement-edit", args=["billing-db", write.pk]),
        {
            "name": "Renamed",
            "risk": "high",
            "requestable": "on",
            "default_duration_days": 30,
            "max_duration_days": 90,
            "seat_cost_monthly": "12.50",
            "policy": write.policy_id,
        },
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert (
        "entitlement billing-db/write is managed in "
        "https://git.example.com/platform/tollgate-config (services/billing-db.yaml)" in body
    )
    write.refresh_from_db()
    assert write.name == "Write"
    assert AuditEvent.objects.count() == events
    page = client.get(reverse("access:service-detail", args=["billing-db"])).content.decode()
    assert (
        '<p class="managed-note" role="note">Managed in '
        "https://git.example.com/platform/tollgate-config (services/billing-db.yaml); change it "
        "there: edits here are refused.</p>" in page
    )
    with pytest.raises(NotPermitted) as exc:
        from access.services import service_update

        service_update(actor=admin, service=write.service, name="Other")
    assert exc.value.reason_code == "managed-elsewhere"


@pytest.mark.django_db
def test_a_drift_kind_may_be_edited_and_the_next_plan_reports_it(tree, org, repo, finance):
    tree.write("budgets.yaml", "budgets:\n  - {team: payments, month: 2026-06, amount: 100}\n")
    plan = config_plan(root=tree.root)
    config_apply(actor=repo, root=tree.root, plan_hash=plan.hash)
    team = org["payments"]
    budget_set(actor=finance, team=team, month=dt.date(2026, 6, 1), amount=Decimal("250"))
    plan = config_plan(root=tree.root)
    (change,) = plan.changes
    assert (change.op, change.key, change.fields) == ("update", "payments/2026-06", ["amount"])
    assert change.before["amount"] == "250.00" and change.after["amount"] == "100.00"
