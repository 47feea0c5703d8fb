"""Writes of cost analytics: budgets, budget alerts, anomaly detection and acknowledgement,
suggestion life cycle. Each service owns its transaction and writes one audit event per
change (detection runs write rows, not audit events: they are derived data)."""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.models import Team
from audit.services import audit_record
from portal.core.actors import COST_ANALYTICS, DEMO, GITOPS, actor_may, actor_user, is_system
from portal.core.errors import NotPermitted, ValidationError
from portal.core.queue import enqueue_on_commit
from portal.core.state import transition

from ..models import CostDaily
from ..state import ANOMALY_TRANSITIONS, SUGGESTION_TRANSITIONS
from . import audit_actions as actions
from .anomalies import detect
from .forecast import forecast_month, month_end
from .models import Anomaly, Budget, BudgetAlert, CostResourceDaily, Suggestion
from .policies import may_act_on_team_costs, may_set_budget
from .selectors import budgets_for_month, data_as_of, thresholds_of
from .tasks import budget_alert_notify

logger = logging.getLogger(__name__)
SYSTEM = COST_ANALYTICS
# The system actors that set budgets without a person: the demo seed and the test suite.
BUDGET_SYSTEMS = (COST_ANALYTICS, DEMO, GITOPS)  # GITOPS: the configuration repository
ZERO = Decimal(0)


# --- budgets -------------------------------------------------------------------------------


def budget_set(
    *,
    actor,
    team: Team,
    month: dt.date,
    amount: Decimal,
    currency: str = "USD",
    thresholds: list[int] | None = None,
) -> Budget:
    """Set ``team``'s monthly budget from ``month`` on (finance and platform admins)."""
    if not actor_may(actor, may_set_budget, systems=BUDGET_SYSTEMS):
        raise NotPermitted("only finance and platform admins set budgets")
    if amount is None or amount < 0:
        raise ValidationError("a budget is zero or more", field="amount")
    thresholds = sorted({int(t) for t in (thresholds or [])})
    if any(t <= 0 or t > 1000 for t in thresholds):
        raise ValidationError("thresholds are percentages between 1 and 1000", field="thresholds")
    currency = (currency or "USD").upper()
    if len(currency) != 3 or not currency.isalpha():
        raise ValidationError("a currency is three letters", field="currency")
    month = month.replace(day=1)
    with transaction.atomic(durable=not is_system(actor)):
        existing = Budget.objects.select_for_update().filter(team=team, month=month).first()
        before = (
            {
                "amount": str(existing.amount),
                "currency": existing.currency,
                "thresholds": existing.thresholds,
            }
            if existing
            else None
        )
        budget, _ = Budget.objects.update_or_create(
            team=team,
            month=month,
            defaults={
                "amount": Decimal(amount).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP),
                "currency": currency,
                "thresholds": thresholds,
                "set_by": actor_user(actor),
                "updated_at": timezone.now(),
            },
        )
        audit_record(
            actor=actor,
            action=actions.BUDGET_SET,
            target=budget,
            before=before,
            after={
                "team": team.slug,
                "month": month.isoformat(),
                "amount": str(budget.amount),
                "currency": currency,
                "thresholds": thresholds,
            },
        )
    return budget


def budget_delete(*, actor, team: Team, month: dt.date) -> bool:
    """Remove a team's budget row for ``month`` (the previous month's budget applies again);
    False when there was none."""
    if not actor_may(actor, may_set_budget, systems=BUDGET_SYSTEMS):
        raise NotPermitted("only finance and platform admins set budgets")
    with transaction.atomic(durable=not is_system(actor)):
        budget = Budget.objects.select_for_update().filter(team=team, month=month).first()
        if budget is None:
            return False
        audit_record(
            actor=actor,
            action=actions.BUDGET_DELETED,
            target=budget,
            before={
                "team": team.slug,
                "month": month.isoformat(),
                "amount": str(budget.amount),
                "currency": budget.currency,
                "thresholds": budget.thresholds,
            },
        )
        budget.delete()
    return True


def budget_alerts_evaluate(
    *, today: dt.date | None = None, notify: bool = True
) -> list[BudgetAlert]:
    """Record (once per team, month, kind and threshold) every crossed budget threshold of
    actual and forecast spend this month, and queue the notifications after commit."""
    as_of = data_as_of(today)
    month = as_of.replace(day=1)
    budgets = budgets_for_month(month=month)
    if not budgets:
        return []
    history_from = month - dt.timedelta(days=35)
    series: dict[int, dict] = defaultdict(dict)
    for team_id, day, billed in (
        CostDaily.objects.filter(team_id__in=budgets, day__gte=history_from, day__lte=as_of)
        .order_by()
        .values("team_id", "day")
        .annotate(b=Sum("billed_cost"))
        .values_list("team_id", "day", "b")
    ):
        series[team_id][day] = billed or ZERO
    created: list[BudgetAlert] = []
    last = month_end(month)
    for team_id, budget in budgets.items():
        if budget.amount <= 0:
            continue
        s = series.get(team_id, {})
        actual = sum((v for d, v in s.items() if d >= month), ZERO)
        forecast = forecast_month(s, month, as_of) if as_of < last else actual
        for kind, amount in (
            (BudgetAlert.Kind.ACTUAL, actual),
            (BudgetAlert.Kind.FORECAST, forecast),
        ):
            for threshold in thresholds_of(budget):
                if amount * 100 < budget.amount * threshold:
                    continue
                alert = _alert_once(team_id, month, kind, threshold, amount, budget.amount)
                if alert is not None:
                    created.append(alert)
    if notify:
        for alert in created:
            enqueue_on_commit(budget_alert_notify, alert.pk, kind="notify")
    return created


def _alert_once(team_id, month, kind, threshold, amount, budget) -> BudgetAlert | None:
    try:
        with transaction.atomic():
            alert = BudgetAlert.objects.create(
                team_id=team_id,
                month=month,
                kind=kind,
                threshold=threshold,
                amount=amount.quantize(Decimal("0.01")),
                budget=budget,
            )
            audit_record(
                actor=SYSTEM,
                action=actions.BUDGET_ALERT,
                target=alert,
                after={
                    "team_id": team_id,
                    "month": month.isoformat(),
                    "kind": kind,
                    "threshold": threshold,
                    "amount": str(alert.amount),
                    "budget": str(budget),
                },
            )
    except IntegrityError:  # already alerted (this run raced another, or an earlier run)
        return None
    return alert


def budget_alert_mark_sent(*, alert_id: int) -> None:
    BudgetAlert.objects.filter(pk=alert_id, sent_at__isnull=True).update(sent_at=timezone.now())


# --- anomalies -----------------------------------------------------------------------------


def anomalies_detect(
    *, today: dt.date | None = None, days: int = 7, history: int = 70
) -> list[Anomaly]:
    """Score the last ``days`` days of every team × service series; store new anomalies
    (an anomaly already stored, e.g. acknowledged, is left as it is)."""
    as_of = data_as_of(today)
    start = as_of - dt.timedelta(days=history + days)
    sensitivity = float(getattr(settings, "COST_ANOMALY_SENSITIVITY", 4.0))
    min_impact = float(getattr(settings, "COST_ANOMALY_MIN_IMPACT", 25.0))
    series: dict[tuple[int, str], dict[dt.date, float]] = defaultdict(dict)
    for team_id, service, day, billed in (
        CostDaily.objects.filter(team__isnull=False, day__gte=start, day__lte=as_of)
        .order_by()
        .values("team_id", "service_name", "day")
        .annotate(b=Sum("billed_cost"))
        .values_list("team_id", "service_name", "day", "b")
    ):
        series[(team_id, service)][day] = float(billed or 0)
    check_days = [as_of - dt.timedelta(days=k) for k in range(days - 1, -1, -1)]
    found: list[Anomaly] = []
    from .alerts import suppressed
    from .models import AnomalySuppression

    learnt: dict[tuple[int, str], list] = defaultdict(list)
    for suppression in AnomalySuppression.objects.all():
        learnt[(suppression.team_id, suppression.service_name)].append(suppression)
    for (team_id, service), s in series.items():
        for score in detect(s, check_days, sensitivity=sensitivity, min_impact=min_impact):
            skip = learnt.get((team_id, service))
            if skip and suppressed(skip, score.day, _d(score.actual)):
                continue  # a dismissal taught the detector that this is expected
            anomaly, created = Anomaly.objects.get_or_create(
                team_id=team_id,
                service_name=service,
                day=score.day,
                defaults={
                    "expected": _d(score.expected),
                    "actual": _d(score.actual),
                    "impact": _d(score.impact),
                    "score": round(score.z, 3),
                    "reason": score.reason[:300],
                    "drivers": anomaly_drivers(team_id=team_id, service=service, day=score.day),
                },
            )
            if created:
                found.append(anomaly)
    return found


def _d(x: float) -> Decimal:
    return Decimal(str(round(x, 6)))


def anomaly_drivers(*, team_id: int, service: str, day: dt.date, limit: int = 5) -> list[dict]:
    """Which resources, SKUs and regions moved: the day's cost per resource against its
    median over the previous 28 days, largest increase first."""
    from statistics import median

    since = day - dt.timedelta(days=28)
    per: dict[tuple, dict[dt.date, Decimal]] = defaultdict(dict)
    for rid, sku, region, d, billed in (
        CostResourceDaily.objects.filter(
            team_id=team_id, service_name=service, day__gte=since, day__lte=day
        )
        .order_by()
        .values("resource_id", "sku_id", "region_id", "day")
        .annotate(b=Sum("billed_cost"))
        .values_list("resource_id", "sku_id", "region_id", "day", "b")
    ):
        per[(rid, sku, region)][d] = billed or ZERO
    drivers = []
    for (rid, sku, region), s in per.items():
        before = [s.get(since + dt.timedelta(days=i), ZERO) for i in range(28)]
        expected = median(before)
        actual = s.get(day, ZERO)
        delta = actual - expected
        if delta > 0:
            drivers.append(
                {
                    "resource_id": rid,
                    "sku_id": sku,
                    "region": region,
                    "expected": str(expected.quantize(Decimal("0.01"))),
                    "actual": str(actual.quantize(Decimal("0.01"))),
                    "delta": str(delta.quantize(Decimal("0.01"))),
                }
            )
    drivers.sort(key=lambda x: -Decimal(x["delta"]))
    return drivers[:limit]


def anomaly_acknowledge(*, actor, anomaly_id: int, note: str = "") -> Anomaly:
    with transaction.atomic(durable=True):
        anomaly = (
            Anomaly.objects.select_for_update(of=("self",))
            .select_related("team")
            .get(pk=anomaly_id)
        )
        if not actor_may(actor, lambda user: may_act_on_team_costs(user, anomaly.team)):
            raise NotPermitted("only the team's leads and managers, finance and admins")
        transition(
            anomaly,
            table=ANOMALY_TRANSITIONS,
            action="acknowledge",
            actor=actor,
            audit_action=actions.ANOMALY_ACKNOWLEDGED,
            reason=note[:500],
            extra_fields={
                "acknowledged_by": actor,
                "acknowledged_at": timezone.now(),
                "note": note[:500],
            },
        )
    return anomaly


# --- suggestions ---------------------------------------------------------------------------


def suggestion_transition(
    *, actor, suggestion_id: int, action: str, reason: str = ""
) -> Suggestion:
    """accept / resolve / dismiss (a reason is required) / reopen, by the table in state.py."""
    if action not in actions.BY_ACTION:
        raise ValidationError("unknown action", field="action")
    reason = (reason or "").strip()
    if action == "dismiss" and not reason:
        raise ValidationError("say why the suggestion is dismissed", field="reason")
    with transaction.atomic(durable=True):
        s = (
            Suggestion.objects.select_for_update(of=("self",))
            .select_related("team")
            .get(pk=suggestion_id)
        )
        if not actor_may(actor, lambda user: may_act_on_team_costs(user, s.team)):
            raise NotPermitted("only the team's leads and managers, finance and admins")
        now = timezone.now()
        extra = {"decided_by": actor}
        if action == "accept":
            extra["accepted_at"] = now
        elif action == "resolve":
            extra["resolved_at"] = now
        elif action == "dismiss":
            extra["dismissed_at"] = now
            extra["dismiss_reason"] = reason[:500]
        elif action == "reopen":
            extra["dismiss_reason"] = ""
            extra["dismissed_at"] = None
        transition(
            s,
            table=SUGGESTION_TRANSITIONS,
            action=action,
            actor=actor,
            audit_action=actions.BY_ACTION[action],
            reason=reason[:500],
            extra_fields=extra,
        )
    return s
