"""Notification routes (notification_routes.yaml) through plan and apply, audited as the
repository; their export plans no change; and a policy stage's on-call flag carried by
policies.yaml."""

from __future__ import annotations

import pytest

from access.models import PolicyStage
from audit.models import AuditEvent
from gitops.services import config_apply, config_export, config_plan
from gitops.tree import ConfigInvalid
from integrations.models import SlackRoute
from portal.core.actors import CLI

from .conftest import POLICIES

ROUTES = """
    notification_routes:
      - channel: C0SECURITY
        min_risk: high
      - channel: C0BILLING
        service: billing-db
        team: payments
"""


def _ops(plan) -> set[tuple[str, str, str]]:
    return {(c.op, c.kind, c.key) for c in plan.changes}


@pytest.mark.django_db
def test_notification_routes_are_planned_applied_and_removed(base_tree, repo):
    base_tree.write("notification_routes.yaml", ROUTES)
    plan = config_plan(root=base_tree.root)
    assert {
        ("create", "notification_route", "C0SECURITY service=* team=* min_risk=high"),
        ("create", "notification_route", "C0BILLING service=billing-db team=payments min_risk=*"),
    } <= _ops(plan)
    config_apply(actor=repo, root=base_tree.root, plan_hash=plan.hash)
    routes = {
        (r.channel_id, r.service.slug if r.service else None, r.team and r.team.slug, r.min_risk)
        for r in SlackRoute.objects.select_related("service", "team")
    }
    assert routes == {
        ("C0SECURITY", None, None, "high"),
        ("C0BILLING", "billing-db", "payments", ""),
    }
    created = AuditEvent.objects.filter(action="slack.route_created")
    assert set(created.values_list("actor_label", flat=True)) == {"gitops:platform-config"}
    assert created.count() == 2
    assert config_plan(root=base_tree.root).changes == []

    # a route added by hand is drift: the plan removes it; the changed route is remove + add
    from integrations.slack.routes import slack_route_create

    slack_route_create(actor=CLI, channel_id="C0HAND")
    base_tree.write(
        "notification_routes.yaml", ROUTES.replace("min_risk: high", "min_risk: critical")
    )
    plan = config_plan(root=base_tree.root)
    assert _ops(plan) == {
        ("delete", "notification_route", "C0HAND service=* team=* min_risk=*"),
        ("delete", "notification_route", "C0SECURITY service=* team=* min_risk=high"),
        ("create", "notification_route", "C0SECURITY service=* team=* min_risk=critical"),
    }
    config_apply(actor=repo, root=base_tree.root, plan_hash=plan.hash)
    assert sorted(SlackRoute.objects.values_list("channel_id", "min_risk")) == [
        ("C0BILLING", ""),
        ("C0SECURITY", "critical"),
    ]
    deleted = AuditEvent.objects.filter(action="slack.route_deleted")
    assert set(deleted.values_list("actor_label", flat=True)) == {"gitops:platform-config"}

    base_tree.write("notification_routes.yaml", "notification_routes: []\n")
    plan = config_plan(root=base_tree.root)
    config_apply(actor=repo, root=base_tree.root, plan_hash=plan.hash)
    assert not SlackRoute.objects.exists()


@pytest.mark.django_db
def test_bad_routes_are_named_and_nothing_is_written(base_tree):
    base_tree.write(
        "notification_routes.yaml",
        """
        notification_routes:
          - channel: C0OK
            service: nowhere
            team: nobody
          - channel: "#general"
    """,
    )
    with pytest.raises(ConfigInvalid) as refused:
        config_plan(root=base_tree.root)
    text = str(refused.value)
    assert "notification_routes.yaml:5" in text and "channel" in text
    base_tree.write(
        "notification_routes.yaml",
        """
        notification_routes:
          - channel: C0OK
            service: nowhere
            team: nobody
    """,
    )
    with pytest.raises(ConfigInvalid) as refused:
        config_plan(root=base_tree.root)
    assert "no service 'nowhere'" in str(refused.value)
    assert "no team 'nobody'" in str(refused.value)
    assert not SlackRoute.objects.exists()


@pytest.mark.django_db
def test_export_of_routes_and_stage_flags_plans_no_change(base_tree, repo, tmp_path):
    base_tree.write("notification_routes.yaml", ROUTES)
    flagged = POLICIES.replace(
        "          - approver: service_owner\n",
        "          - approver: service_owner\n            auto_approve_on_call: true\n",
    )
    assert flagged != POLICIES
    base_tree.write("policies.yaml", flagged)
    plan = config_plan(root=base_tree.root)
    config_apply(actor=repo, root=base_tree.root, plan_hash=plan.hash)
    stages = PolicyStage.objects.filter(policy__slug="two-step").order_by("order")
    assert [s.auto_approve_on_call for s in stages] == [False, True]

    out = tmp_path / "export"
    written = config_export(root=out)
    assert "notification_routes.yaml" in written
    text = (out / "notification_routes.yaml").read_text()
    assert "notification_routes.schema.json" in text and "C0BILLING" in text
    assert "auto_approve_on_call: true" in (out / "policies.yaml").read_text()
    assert config_plan(root=out).changes == []

    # the flag turned off in the tree is a change of the policy, applied
    base_tree.write("policies.yaml", POLICIES)
    plan = config_plan(root=base_tree.root)
    assert _ops(plan) == {("update", "policy", "two-step")}
    config_apply(actor=repo, root=base_tree.root, plan_hash=plan.hash)
    assert not PolicyStage.objects.filter(auto_approve_on_call=True).exists()
