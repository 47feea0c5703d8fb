"""Budgets and alerts (C5): thresholds of actual and forecast spend alert once per
threshold per month, by e-mail and the chat webhook; only finance/admins set budgets."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from audit.models import AuditEvent
from costs.analytics import services
from costs.analytics.forecast import forecast_month
from costs.analytics.models import Budget, BudgetAlert
from portal.core.errors import NotPermitted, ValidationError

from .analytics_data import standard_org_costs

pytestmark = pytest.mark.django_db


@pytest.fixture
def costs(tmp_path, org):
    # a fixed "today" mid-month, so actual < forecast
    return standard_org_costs(tmp_path, org, days=60, today=dt.date(2026, 3, 15))


def test_forecast_method_on_a_weekday_pattern():
    month = dt.date(2026, 3, 1)
    series = {}
    d = dt.date(2026, 1, 1)
    while d <= dt.date(2026, 3, 31):
        series[d] = Decimal("5") if d.weekday() >= 5 else Decimal("10")
        d += dt.timedelta(days=1)
    exact = sum(v for k, v in series.items() if k.month == 3)
    assert forecast_month(series, month, dt.date(2026, 3, 10)) == exact
    assert forecast_month(series, month, dt.date(2026, 3, 31)) == exact
    assert forecast_month(series, month, dt.date(2026, 2, 28)) == exact


def test_thresholds_alert_once(
    costs, org, finance, manager, mailoutbox, settings, django_capture_on_commit_callbacks
):
    settings.CHAT_WEBHOOK_URL = ""
    month = costs.replace(day=1)
    services.budget_set(actor=finance, team=org["payments"], month=month, amount=Decimal("1000"))
    # payments spends ~38/day: 15 days ≈ 570 (57%), forecast ≈ 1180 (118%)
    with django_capture_on_commit_callbacks(execute=True):
        alerts = services.budget_alerts_evaluate(today=costs)
    assert sorted((a.kind, a.threshold) for a in alerts) == [("forecast", 80), ("forecast", 100)]
    assert len(mailoutbox) == 2
    assert manager.email in mailoutbox[0].to
    assert "Forecast spend" in mailoutbox[0].body and "/teams/payments/costs/" in mailoutbox[0].body
    assert BudgetAlert.objects.filter(sent_at__isnull=False).count() == 2
    audit_before = AuditEvent.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        again = services.budget_alerts_evaluate(today=costs)
    assert again == [] and len(mailoutbox) == 2
    assert BudgetAlert.objects.count() == 2 and AuditEvent.objects.count() == audit_before
    # a lower budget crosses the actual thresholds too: only the new ones alert
    services.budget_set(actor=finance, team=org["payments"], month=month, amount=Decimal("600"))
    with django_capture_on_commit_callbacks(execute=True):
        new = services.budget_alerts_evaluate(today=costs)
    assert sorted((a.kind, a.threshold) for a in new) == [("actual", 80)]
    assert len(mailoutbox) == 3


def test_custom_thresholds(costs, org, finance):
    services.budget_set(
        actor=finance,
        team=org["search"],
        month=costs.replace(day=1),
        amount=Decimal("300"),
        thresholds=[50],
    )
    alerts = services.budget_alerts_evaluate(today=costs, notify=False)
    assert [(a.team.slug, a.kind, a.threshold) for a in alerts] == [
        ("search", "actual", 50),
        ("search", "forecast", 50),
    ]


@pytest.mark.sqlite
def test_only_finance_and_admins_set_budgets(org, manager, requester, admin):
    for who in (manager, requester):
        with pytest.raises(NotPermitted):
            services.budget_set(
                actor=who, team=org["payments"], month=dt.date(2026, 3, 1), amount=Decimal("1")
            )
    assert Budget.objects.count() == 0
    assert AuditEvent.objects.filter(action="costs.budget_set").count() == 0
    with pytest.raises(ValidationError):
        services.budget_set(
            actor=admin, team=org["payments"], month=dt.date(2026, 3, 1), amount=Decimal("-1")
        )
    b = services.budget_set(
        actor=admin, team=org["payments"], month=dt.date(2026, 3, 7), amount=Decimal("12.345")
    )
    assert (b.month, b.amount) == (dt.date(2026, 3, 1), Decimal("12.35"))
    assert AuditEvent.objects.filter(action="costs.budget_set").count() == 1
