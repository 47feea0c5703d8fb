"""Campaign templates: kept in review_templates.yaml (plan, apply, round trip), a campaign
started from one (by a person or by its cadence, frozen clock), and the page refusing the
wrong person."""

from __future__ import annotations

import datetime as dt
from datetime import timedelta

import pytest

from audit.models import AuditEvent
from gitops.services import config_apply, config_export, config_plan
from gitops.tree import ConfigInvalid
from portal.core.actors import gitops_actor
from portal.core.errors import NotPermitted
from reviews.campaign_templates import campaign_from_template, templates_start_due
from reviews.models import Campaign, CampaignTemplate, ReviewItem
from reviews.tasks import reviews_sweep
from tests.gitops.conftest import TreeWriter

TEMPLATES = """
    review_templates:
      - slug: billing-quarterly
        name: Billing quarterly
        scope: service
        service: billing
        reviewer: owner
        deadline_action: revoke
        duration: 14d
        cadence: 90d
      - slug: high-risk
        name: High risk, by hand
        scope: risk
        risk: high
        reviewer: manager
"""

DAY = dt.datetime(2026, 6, 17, 10, tzinfo=dt.UTC)


@pytest.fixture
def tree(tmp_path) -> TreeWriter:
    return TreeWriter(tmp_path / "config")


@pytest.fixture
def repo():
    return gitops_actor("platform-config")


def _applied(tree, repo, text=TEMPLATES):
    tree.write("review_templates.yaml", text)
    plan = config_plan(root=tree.root)
    config_apply(actor=repo, root=tree.root, plan_hash=plan.hash)
    return plan


@pytest.mark.django_db
def test_templates_are_planned_applied_changed_removed_and_round_trip(
    tree, repo, billing, tmp_path
):
    plan = _applied(tree, repo)
    assert {(c.op, c.kind, c.key) for c in plan.changes} == {
        ("create", "review_template", "billing-quarterly"),
        ("create", "review_template", "high-risk"),
    }
    quarterly = CampaignTemplate.objects.get(slug="billing-quarterly")
    assert quarterly.scope_service == billing and quarterly.reviewer_rule == "owner"
    assert quarterly.duration == timedelta(days=14) and quarterly.cadence == timedelta(days=90)
    manual = CampaignTemplate.objects.get(slug="high-risk")
    assert (manual.scope_risk, manual.cadence, manual.deadline_action) == ("high", None, "escalate")
    saved = AuditEvent.objects.filter(action="review.template_saved")
    assert set(saved.values_list("actor_label", flat=True)) == {"gitops:platform-config"}
    assert config_plan(root=tree.root).changes == []

    # round trip: the export plans no change
    out = tmp_path / "export"
    assert "review_templates.yaml" in config_export(root=out)
    assert config_plan(root=out).changes == []

    changed = TEMPLATES.replace("cadence: 90d", "cadence: 30d")
    plan = _applied(tree, repo, changed)
    assert [(c.op, c.key) for c in plan.changes] == [("update", "billing-quarterly")]
    assert CampaignTemplate.objects.get(slug="billing-quarterly").cadence == timedelta(days=30)

    plan = _applied(tree, repo, changed.split("      - slug: high-risk")[0])
    assert [(c.op, c.key) for c in plan.changes] == [("delete", "high-risk")]
    assert not CampaignTemplate.objects.filter(slug="high-risk").exists()
    assert AuditEvent.objects.filter(action="review.template_deleted").count() == 1


@pytest.mark.django_db
def test_bad_templates_are_named_and_nothing_is_written(tree, billing):
    tree.write(
        "review_templates.yaml",
        TEMPLATES.replace("service: billing", "service: nowhere").replace(
            "cadence: 90d", "cadence: 7d"
        ),
    )
    with pytest.raises(ConfigInvalid) as refused:
        config_plan(root=tree.root)
    text = str(refused.value)
    assert "no service 'nowhere'" in text
    assert "cadence is shorter than the duration" in text
    tree.write("review_templates.yaml", TEMPLATES.replace("        service: billing\n", ""))
    with pytest.raises(ConfigInvalid, match="service"):
        config_plan(root=tree.root)
    assert not CampaignTemplate.objects.exists()


@pytest.mark.django_db
def test_a_campaign_starts_from_a_template_by_hand_and_by_cadence(
    tree, repo, held, security, requester, clock
):
    clock.move_to(DAY)
    _applied(tree, repo)
    quarterly = CampaignTemplate.objects.get(slug="billing-quarterly")

    with pytest.raises(NotPermitted):
        campaign_from_template(actor=requester, template=quarterly)
    assert not Campaign.objects.exists()

    campaign = campaign_from_template(actor=security, template=quarterly)
    assert campaign.status == "active" and campaign.template == quarterly
    assert campaign.deadline - campaign.starts_at == timedelta(days=14)
    assert campaign.created_by == security
    assert ReviewItem.objects.filter(campaign=campaign).count() == len(held)
    created = AuditEvent.objects.get(action="review.campaign_created", target_id=str(campaign.pk))
    assert created.after["template"] == "billing-quarterly"

    # the cadence: nothing due before 90 days; the beat task starts the next one on the day
    clock.move_to(DAY + timedelta(days=89))
    assert templates_start_due() == 0
    clock.move_to(DAY + timedelta(days=90, minutes=1))
    reviews_sweep()
    latest = Campaign.objects.filter(template=quarterly).order_by("-pk").first()
    assert latest.pk != campaign.pk and latest.status == "active"
    assert latest.created_by is None
    started = AuditEvent.objects.get(action="review.campaign_start", target_id=str(latest.pk))
    assert started.actor_label == "system:reviews"
    assert templates_start_due() == 0  # not twice
    # a template without a cadence is never started by itself
    assert not Campaign.objects.filter(template__slug="high-risk").exists()


@pytest.mark.django_db
def test_template_pages_refuse_the_wrong_person(client, tree, repo, billing, security, requester):
    _applied(tree, repo)
    client.force_login(requester)
    assert client.get("/reviews/templates/").status_code == 403
    assert client.post("/reviews/templates/billing-quarterly/start/").status_code == 404
    assert not Campaign.objects.exists()

    client.force_login(security)
    page = client.get("/reviews/templates/")
    assert page.status_code == 200 and b"template-billing-quarterly" in page.content
    assert client.post("/reviews/templates/nowhere/start/").status_code == 404
    response = client.post("/reviews/templates/billing-quarterly/start/")
    campaign = Campaign.objects.get()
    assert response.status_code == 302 and response.url == f"/reviews/campaigns/{campaign.pk}/"
