"""Who may act on cost data: a person by role, a system actor only where the service names it,
never a string (a string used to mean "system" and skipped every check)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from audit.models import AuditEvent
from costs import services
from costs.analytics import services as analytics_services
from costs.analytics.models import Anomaly, Budget, Suggestion
from costs.models import AttributionRule, BillingSource, ImportRun, ReattributionRun
from portal.core.actors import COSTS, DEMO, LEAVER, SCIM, TEST, SystemActor
from portal.core.errors import NotPermitted

pytestmark = pytest.mark.django_db
MONTH = dt.date(2024, 9, 1)
RULE = {
    "name": "prod to payments",
    "tag_key": "ENVIRONMENT",
    "tag_value": "prod",
    "method": "direct",
    "team": "payments",
}


@pytest.mark.parametrize("actor", ["system:test", "system:costs", "admin", ""])
def test_a_string_actor_is_refused_before_anything_is_written(org, actor):
    with pytest.raises(TypeError):
        services.source_get_or_create(actor=actor, name="sample")
    with pytest.raises(TypeError):
        services.rule_save(actor=actor, rule=None, data=dict(RULE))
    with pytest.raises(TypeError):
        services.reattribution_request(actor=actor)
    with pytest.raises(TypeError):
        analytics_services.budget_set(
            actor=actor, team=org["payments"], month=MONTH, amount=Decimal("10")
        )
    assert not BillingSource.objects.exists()
    assert not AttributionRule.objects.exists()
    assert not ReattributionRun.objects.exists()
    assert not Budget.objects.exists()
    assert not AuditEvent.objects.exists()


def test_a_string_actor_cannot_execute_an_import(sample_path):
    run = services.import_run_create(
        actor=COSTS, source_name="s", file_name="f", file_path=str(sample_path)
    )
    with pytest.raises(TypeError):
        services.import_run_execute(run_id=run.pk, actor="system:costs")
    run.refresh_from_db()
    assert run.status == ImportRun.Status.PENDING


@pytest.mark.parametrize("actor", [LEAVER, SCIM, SystemActor("someone-else")])
def test_a_system_actor_the_cost_services_do_not_expect_is_refused(org, actor):
    with pytest.raises(NotPermitted):
        services.source_get_or_create(actor=actor, name="sample")
    with pytest.raises(NotPermitted):
        services.rule_save(actor=actor, rule=None, data=dict(RULE))
    with pytest.raises(NotPermitted):
        services.reattribution_request(actor=actor)
    with pytest.raises(NotPermitted):
        analytics_services.budget_set(
            actor=actor, team=org["payments"], month=MONTH, amount=Decimal("10")
        )
    assert not BillingSource.objects.exists()
    assert not AttributionRule.objects.exists()
    assert not ReattributionRun.objects.exists()
    assert not Budget.objects.exists()
    assert not AuditEvent.objects.exists()


def test_ingestion_acts_as_the_costs_system_actor_and_records_no_person(org):
    source = services.source_get_or_create(actor=COSTS, name="watched")
    assert source.name == "watched"
    event = AuditEvent.objects.get(action="costs.source_created")
    assert (event.actor_id, event.actor_label) == (None, "system:costs")


def test_the_demo_seed_sets_a_budget_with_no_person_behind_it(org):
    budget = analytics_services.budget_set(
        actor=DEMO, team=org["payments"], month=MONTH, amount=Decimal("10")
    )
    assert budget.set_by is None
    event = AuditEvent.objects.get(action="costs.budget_set")
    assert (event.actor_id, event.actor_label) == (None, "system:demo")


def test_a_person_without_the_role_is_still_refused(org, requester):
    with pytest.raises(NotPermitted):
        services.source_get_or_create(actor=requester, name="sample")
    with pytest.raises(NotPermitted):
        analytics_services.budget_set(
            actor=requester, team=org["payments"], month=MONTH, amount=Decimal("10")
        )
    assert not BillingSource.objects.exists()
    assert not Budget.objects.exists()


@pytest.mark.parametrize("actor", [COSTS, TEST, "system:test"])
def test_system_actors_and_strings_cannot_decide_anomalies_or_suggestions(org, actor):
    """Deciding is a person's job: no system actor is accepted, a string is a TypeError."""
    team = org["payments"]
    anomaly = Anomaly.objects.create(
        team=team,
        service_name="compute",
        day=MONTH,
        expected=Decimal("1"),
        actual=Decimal("9"),
        impact=Decimal("8"),
        score=9.0,
    )
    suggestion = Suggestion.objects.create(
        fingerprint="f" * 64,
        kind=Suggestion.Kind.IDLE,
        team=team,
        title="idle",
        estimated_monthly_saving=Decimal("5"),
        savings_method="test",
        confidence=Suggestion.Confidence.LOW,
    )
    error = NotPermitted if isinstance(actor, SystemActor) else TypeError
    with pytest.raises(error):
        analytics_services.anomaly_acknowledge(actor=actor, anomaly_id=anomaly.pk)
    with pytest.raises(error):
        analytics_services.suggestion_transition(
            actor=actor, suggestion_id=suggestion.pk, action="accept"
        )
    anomaly.refresh_from_db()
    suggestion.refresh_from_db()
    assert (anomaly.status, suggestion.status) == ("open", "open")
    assert not AuditEvent.objects.exists()
