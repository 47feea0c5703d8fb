"""Export, then plan, of the demo shows no change (the round trip), and an apply of the export
onto the same database writes nothing."""

from __future__ import annotations

import io
import random
from decimal import Decimal

import pytest

from audit.models import AuditEvent
from costs.analytics.services import budget_set
from costs.services import rule_save
from demo.steps import access as demo_access
from demo.steps.accounts import seed_people
from demo.steps.standards import seed_standards
from gitops.services import config_apply, config_export, config_plan
from portal.core.actors import DEMO, gitops_actor


@pytest.mark.slow
@pytest.mark.django_db
def test_export_then_plan_of_the_demo_shows_no_change(monkeypatch, tmp_path):
    import datetime as dt

    from accounts.models import Team

    monkeypatch.setattr(demo_access, "HISTORY_REQUESTS", 40)
    out = io.StringIO()
    seed_people(stdout=out, rng=random.Random(7))
    demo_access.seed_access(stdout=out, rng=random.Random(7))
    seed_standards(stdout=out, rng=random.Random(7))
    team = Team.objects.order_by("slug").first()
    budget_set(actor=DEMO, team=team, month=dt.date(2026, 6, 1), amount=Decimal("1200.5"))
    rule_save(
        actor=DEMO,
        rule=None,
        data={
            "name": "by tag",
            "method": "direct",
            "team": team.slug,
            "tag_key": "team",
            "tag_value": "x",
        },
    )

    from access.models import Entitlement
    from access.services import RuleSpec, assignment_rule_save, bundle_save
    from accounts.models import User

    admin = User.objects.get(email="admin@tollgate.test")
    members = list(Entitlement.objects.filter(requestable=True).order_by("pk")[:3])
    demo_bundle = bundle_save(actor=admin, slug="starter", name="Starter", entitlements=members)
    assignment_rule_save(
        actor=admin,
        bundle=demo_bundle,
        spec=RuleSpec(slug="mgr", manager_subtree="manager@tollgate.test"),
    )

    written = config_export(root=tmp_path)
    assert "bundles.yaml" in written
    assert "policies.yaml" in written and "standards.yaml" in written
    assert any(p.startswith("services/") for p in written)
    plan = config_plan(root=tmp_path)
    assert plan.changes == [], plan.render()
    assert plan.unchanged > 50
    events = AuditEvent.objects.count()
    config_apply(actor=gitops_actor("demo-repo"), root=tmp_path, plan_hash=plan.hash)
    assert AuditEvent.objects.count() == events
    # a second export is byte for byte the first
    again = tmp_path / "again"
    config_export(root=again)
    for path in written:
        assert (again / path).read_text() == (tmp_path / path).read_text(), path
