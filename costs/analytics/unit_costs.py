"""Unit costs: a team's business metrics (requests served, active customers …), their daily
values pushed through the API, and the team's daily cost per unit.

Cost per unit of a day = the team's billed cost that day (``CostDaily``: direct and its share
of shared costs, the same figure as its summary) / the metric's value that day; a day without
a value, or with 0, has no unit cost (shown as a gap, never as infinity)."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.models import Team
from audit.services import audit_record
from portal.core.actors import actor_may, actor_user
from portal.core.errors import NotPermitted, ValidationError

from ..models import CostDaily
from . import audit_actions as actions
from .models import BusinessMetric, MetricValue
from .policies import may_act_on_team_costs, may_view_team_costs
from .selectors.common import team_for_costs

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")
MAX_VALUES = 1000


def _may_push(user, team: Team) -> bool:
    """The team's own people, its leads and managers, finance and admins."""
    return getattr(user, "team_id", None) == team.pk or may_act_on_team_costs(user, team)


def metric_create(*, actor, team_slug: str, slug: str, name: str, unit: str) -> BusinessMetric:
    team = Team.objects.filter(slug=team_slug).first()
    user = actor_user(actor)
    if team is None or (user is not None and not may_view_team_costs(user, team)):
        raise ValidationError(f"no such team: {team_slug!r}", field="team")
    if not actor_may(actor, lambda u: may_act_on_team_costs(u, team)):
        raise NotPermitted("the team's leads and managers, finance and admins define metrics")
    slug = (slug or "").strip().lower()
    if not SLUG.match(slug):
        raise ValidationError(
            "a metric slug is lower-case letters, digits and dashes", field="slug"
        )
    if not (name or "").strip() or not (unit or "").strip():
        raise ValidationError("a metric needs a name and a unit", field="name")
    with transaction.atomic(durable=True):
        if BusinessMetric.objects.filter(slug=slug).exists():
            raise ValidationError(f"the metric {slug!r} exists already", field="slug")
        metric = BusinessMetric.objects.create(
            slug=slug, team=team, name=name.strip()[:120], unit=unit.strip()[:40], created_by=user
        )
        audit_record(
            actor=actor,
            action=actions.METRIC_CREATED,
            target=metric,
            after={"team": team.slug, "slug": slug, "name": metric.name, "unit": metric.unit},
        )
    return metric


def metric_for_viewer(*, viewer, slug: str) -> BusinessMetric:
    """The metric, or 404 when the viewer may not see its team's costs."""
    from django.http import Http404

    metric = BusinessMetric.objects.select_related("team").filter(slug=slug).first()
    if metric is None or not may_view_team_costs(viewer, metric.team):
        raise Http404("no such metric")
    return metric


def metric_values_push(*, actor, metric: BusinessMetric, values: list[dict]) -> int:
    """Store daily values (a day pushed again is replaced). All or nothing: one bad value
    refuses the whole push, naming its position."""
    if not actor_may(actor, lambda u: _may_push(u, metric.team)):
        raise NotPermitted("only the team's people, finance and admins push its metrics")
    if not isinstance(values, list) or not values:
        raise ValidationError("values: a non-empty list of {day, value}", field="values")
    if len(values) > MAX_VALUES:
        raise ValidationError(f"at most {MAX_VALUES} values per push", field="values")
    clean: dict[dt.date, Decimal] = {}
    today = timezone.now().date()
    for i, item in enumerate(values):
        if not isinstance(item, dict):
            raise ValidationError(f"values[{i}]: an object with day and value", field="values")
        try:
            day = dt.date.fromisoformat(str(item.get("day", "")))
        except ValueError:
            raise ValidationError(
                f"values[{i}].day: not a YYYY-MM-DD date", field="values"
            ) from None
        if day > today:
            raise ValidationError(f"values[{i}].day: {day} is in the future", field="values")
        try:
            value = Decimal(str(item.get("value", "")))
        except InvalidOperation:
            raise ValidationError(f"values[{i}].value: not a number", field="values") from None
        if not value.is_finite() or value < 0 or value >= Decimal("1e18"):
            raise ValidationError(f"values[{i}].value: a number from 0", field="values")
        clean[day] = value.quantize(Decimal("0.000001"))
    now = timezone.now()
    with transaction.atomic(durable=True):
        for day, value in sorted(clean.items()):
            MetricValue.objects.update_or_create(
                metric=metric, day=day, defaults={"value": value, "updated_at": now}
            )
        audit_record(
            actor=actor,
            action=actions.METRIC_VALUES_PUSHED,
            target=metric,
            after={
                "days": len(clean),
                "first": min(clean).isoformat(),
                "last": max(clean).isoformat(),
            },
        )
    return len(clean)


def unit_costs(*, viewer, team_slug: str, start: dt.date, end: dt.date) -> list[dict]:
    """Per metric of the team: daily cost, value and cost per unit over [start, end]."""
    team = team_for_costs(viewer=viewer, slug=team_slug)
    metrics = list(BusinessMetric.objects.filter(team=team).order_by("slug"))
    if not metrics:
        return []
    cost = dict(
        CostDaily.objects.filter(team=team, day__gte=start, day__lte=end)
        .order_by()
        .values("day")
        .annotate(b=Sum("billed_cost"))
        .values_list("day", "b")
    )
    values: dict[int, dict[dt.date, Decimal]] = {m.pk: {} for m in metrics}
    for metric_id, day, value in MetricValue.objects.filter(
        metric__in=metrics, day__gte=start, day__lte=end
    ).values_list("metric_id", "day", "value"):
        values[metric_id][day] = value
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    out = []
    for m in metrics:
        series = []
        for day in days:
            c = cost.get(day) or Decimal(0)
            v = values[m.pk].get(day)
            series.append(
                {
                    "day": day,
                    "cost": c.quantize(Decimal("0.01")),
                    "value": v,
                    "unit_cost": (c / v).quantize(Decimal("0.000001")) if v else None,
                }
            )
        out.append({"metric": m, "series": series})
    return out
