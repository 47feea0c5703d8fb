"""Every object kind through plan and apply: create, change, remove; the plan's diff and hash;
apply through the services audited as gitops:<name>; the hash refuses a changed database."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.management import call_command

from access.models import ApprovalPolicy, Entitlement, Service, ToxicPair
from audit.models import AuditEvent
from costs.analytics.models import Budget
from costs.models import AttributionRule
from gitops.models import ManagedObject
from gitops.services import config_apply, config_plan
from portal.core.errors import Conflict, NotPermitted
from standards.models import Standard

from .conftest import POLICIES, SERVICE


def _ops(plan) -> set[tuple[str, str, str]]:
    return {(c.op, c.kind, c.key) for c in plan.changes}


@pytest.mark.django_db
def test_catalog_kinds_are_created_changed_and_removed(base_tree, repo):
    plan = config_plan(root=base_tree.root)
    assert _ops(plan) >= {
        ("create", "policy", "two-step"),
        ("create", "service", "billing-db"),
        ("create", "entitlement", "billing-db/read"),
        ("create", "entitlement", "billing-db/write"),
        ("create", "toxic_pair", "billing-db/read + billing-db/write"),
    }
    text = plan.render()
    assert "+ service billing-db  (services/billing-db.yaml:1)" in text
    assert '    + risk: "high"' in text
    assert f"Plan hash: {plan.hash}" in text

    config_apply(actor=repo, root=base_tree.root, plan_hash=plan.hash)
    write = Entitlement.objects.get(service__slug="billing-db", slug="write")
    assert write.risk == "high" and write.policy.slug == "two-step"
    assert write.seat_cost_monthly == Decimal("12.50")
    assert [str(p) for p in write.prerequisites.all()] == ["billing-db/read"]
    assert ApprovalPolicy.objects.get(slug="two-step").remind_after == dt.timedelta(hours=12)
    assert ToxicPair.objects.count() == 1
    labels = set(AuditEvent.objects.values_list("actor_label", flat=True))
    assert labels == {"gitops:platform-config"}
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"service.created", "entitlement.created", "policy.created", "gitops.applied"} <= actions
    assert ManagedObject.objects.filter(kind="entitlement").count() == 2
    assert config_plan(root=base_tree.root).changes == []

    # change: a field of each kind
    base_tree.write("policies.yaml", POLICIES.replace("remind_after: 12h", "remind_after: 2d"))
    base_tree.write(
        "services/billing-db.yaml",
        SERVICE.replace("tier: 1", "tier: 0").replace("risk: high", "risk: critical"),
    )
    base_tree.write(
        "toxic_pairs.yaml",
        """
        toxic_pairs:
          - first: billing-db/read
            second: billing-db/write
            reason: a new reason
    """,
    )
    plan = config_plan(root=base_tree.root)
    assert _ops(plan) == {
        ("update", "policy", "two-step"),
        ("update", "service", "billing-db"),
        ("update", "entitlement", "billing-db/write"),
        ("update", "toxic_pair", "billing-db/read + billing-db/write"),
    }
    assert '    - risk: "high"\n    + risk: "critical"' in plan.render()
    config_apply(actor=repo, root=base_tree.root, plan_hash=plan.hash)
    assert Service.objects.get(slug="billing-db").tier == 0
    assert ToxicPair.objects.get().reason == "a new reason"
    assert ApprovalPolicy.objects.get(slug="two-step").remind_after == dt.timedelta(days=2)

    # remove: the pair, the write entitlement (no history: deleted), the policy
    base_tree.write("toxic_pairs.yaml", "toxic_pairs: []\n")
    base_tree.write(
        "services/billing-db.yaml",
        SERVICE.replace("tier: 1", "tier: 0").split("      - slug: write")[0],
    )
    base_tree.write("policies.yaml", POLICIES.split("      - slug: two-step")[0])
    plan = config_plan(root=base_tree.root)
    assert _ops(plan) == {
        ("delete", "policy", "two-step"),
        ("delete", "entitlement", "billing-db/write"),
        ("delete", "toxic_pair", "billing-db/read + billing-db/write"),
    }
    config_apply(actor=repo, root=base_tree.root, plan_hash=plan.hash)
    assert not Entitlement.objects.filter(slug="write").exists()
    assert not ApprovalPolicy.objects.filter(slug="two-step").exists()
    assert ToxicPair.objects.count() == 0
    assert not ManagedObject.objects.filter(key="billing-db/write").exists()
    assert config_plan(root=base_tree.root).changes == []


@pytest.mark.django_db
def test_standards_budgets_and_attribution_rules(tree, org, repo):
    tree.write(
        "standards.yaml",
        """
        - id: no-contractor-admins
          title: Contractors hold access at most 30 days
          severity: high
          owner: platform
          scope:
            worker_type: contractor
          check:
            kind: max_duration_days
            days: 30
    """,
    )
    tree.write(
        "budgets.yaml",
        """
        budgets:
          - team: payments
            month: 2026-06
            amount: 1000
            thresholds: [80, 100]
    """,
    )
    tree.write(
        "attribution_rules.yaml",
        """
        attribution_rules:
          - name: payments by tag
            method: direct
            team: payments
            tag_key: team
            tag_value: payments
          - name: shared platform
            method: fixed
            shares:
              - {team: payments, weight: 2}
              - {team: search, weight: 1}
    """,
    )
    plan = config_plan(root=tree.root)
    assert _ops(plan) == {
        ("create", "standard", "no-contractor-admins"),
        ("create", "budget", "payments/2026-06"),
        ("create", "attribution_rule", "payments by tag"),
        ("create", "attribution_rule", "shared platform"),
    }
    config_apply(actor=repo, root=tree.root, plan_hash=plan.hash)
    assert Standard.objects.get(key="no-contractor-admins", active=True).severity == "high"
    budget = Budget.objects.get(team__slug="payments")
    assert budget.amount == Decimal("1000.00") and budget.thresholds == [80, 100]
    shared = AttributionRule.objects.get(name="shared platform")
    assert shared.position == 20 and shared.shares.count() == 2
    assert config_plan(root=tree.root).changes == []

    tree.write("budgets.yaml", "budgets: []\n")
    tree.write(
        "attribution_rules.yaml",
        """
        attribution_rules:
          - name: payments by tag
            method: direct
            team: search
            tag_key: team
            tag_value: payments
    """,
    )
    tree.write("standards.yaml", "[]\n")
    plan = config_plan(root=tree.root)
    assert _ops(plan) == {
        ("delete", "standard", "no-contractor-admins"),
        ("delete", "budget", "payments/2026-06"),
        ("update", "attribution_rule", "payments by tag"),
        ("delete", "attribution_rule", "shared platform"),
    }
    assert "disabled, not deleted" in plan.render()
    config_apply(actor=repo, root=tree.root, plan_hash=plan.hash)
    assert not Budget.objects.exists()
    assert not AttributionRule.objects.get(name="shared platform").enabled
    assert AttributionRule.objects.get(name="payments by tag").team.slug == "search"
    assert not Standard.objects.filter(active=True).exists()
    assert config_plan(root=tree.root).changes == []


@pytest.mark.django_db
def test_a_kind_whose_file_is_absent_is_not_managed(tree, org, repo):
    from tests.access.factories import make_service

    make_service(org["search"], slug="kept")
    tree.write("toxic_pairs.yaml", "toxic_pairs: []\n")
    plan = config_plan(root=tree.root)
    assert [k.name for k in plan.kinds] == ["toxic_pair"]
    assert plan.changes == []


@pytest.mark.django_db
def test_apply_refuses_when_the_database_changed_since_the_plan(base_tree, repo, admin):
    from access.services import service_create

    plan = config_plan(root=base_tree.root)
    service_create(actor=admin, slug="sneaky", name="Sneaky", owner_team=admin.team)
    events = AuditEvent.objects.count()
    with pytest.raises(Conflict, match="changed since the plan"):
        config_apply(actor=repo, root=base_tree.root, plan_hash=plan.hash)
    assert AuditEvent.objects.count() == events
    assert not Service.objects.filter(slug="billing-db").exists()
    assert not ManagedObject.objects.exists()


@pytest.mark.django_db
def test_apply_refuses_when_the_files_changed_since_the_plan(base_tree, repo):
    plan = config_plan(root=base_tree.root)
    base_tree.write("services/billing-db.yaml", SERVICE.replace("tier: 1", "tier: 3"))
    with pytest.raises(Conflict):
        config_apply(actor=repo, root=base_tree.root, plan_hash=plan.hash)
    assert not Service.objects.exists()


@pytest.mark.django_db
def test_only_a_gitops_actor_applies(base_tree, admin):
    from portal.core.actors import CLI

    plan = config_plan(root=base_tree.root)
    for actor in (admin, CLI):
        with pytest.raises(NotPermitted):
            config_apply(actor=actor, root=base_tree.root, plan_hash=plan.hash)
    assert not Service.objects.exists()


@pytest.mark.django_db
def test_commands_exit_codes_and_apply(base_tree, capsys):
    with pytest.raises(SystemExit) as exit_:
        call_command("config_plan", str(base_tree.root))
    assert exit_.value.code == 2
    out = capsys.readouterr().out
    plan_hash = out.rsplit("Plan hash: ", 1)[1].strip()
    call_command("config_apply", str(base_tree.root), "--plan-hash", plan_hash, "--name", "ci")
    assert "as gitops:ci" in capsys.readouterr().out
    call_command("config_plan", str(base_tree.root))  # no change: returns, exit code 0
    assert "No changes" in capsys.readouterr().out
    base_tree.write("toxic_pairs.yaml", "toxic_pairs: [\n")
    with pytest.raises(SystemExit) as exit_:
        call_command("config_plan", str(base_tree.root))
    assert exit_.value.code == 1
    assert "toxic_pairs.yaml:2: YAML syntax error" in capsys.readouterr().err
