"""Messages of cost analytics (budget alerts, the weekly digest). Delivered by Celery tasks
after commit, through the portal's e-mail and chat-webhook helpers."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Sum
from django.urls import reverse

from access.notifications import Message, absolute
from accounts.models import Team, User
from accounts.selectors import team_leads, team_members

from .models import BudgetAlert, Suggestion


def team_recipients(team: Team, *, leads_only: bool = False) -> list[str]:
    leads = set(team_leads(team=team).filter(is_active=True).values_list("email", flat=True))
    if leads_only and leads:
        return sorted(leads)
    members = set(team_members(team=team).values_list("email", flat=True))
    return sorted(leads | members)


def budget_alert_message(alert: BudgetAlert) -> Message:
    team = alert.team
    link = absolute(reverse("costs-dash:team", args=[team.slug]))
    what = "Spend" if alert.kind == BudgetAlert.Kind.ACTUAL else "Forecast spend"
    subject = (
        f"[Tollgate] {team.name}: {what.lower()} reached {alert.threshold}% of the "
        f"{alert.month:%B %Y} budget"
    )
    body = (
        f"{what} of {team.name} for {alert.month:%B %Y} is {alert.amount} against a budget of "
        f"{alert.budget} ({alert.amount / alert.budget * 100:.0f}%).\n\nDashboard: {link}\n"
    )
    return Message(team_recipients(team), subject, body, link)


def digest_message(team: Team) -> Message | None:
    open_qs = Suggestion.objects.filter(team=team, status=Suggestion.Status.OPEN)
    rows = list(open_qs.order_by("-estimated_monthly_saving")[:10])
    if not rows:
        return None
    total = open_qs.aggregate(s=Sum("estimated_monthly_saving"))["s"] or Decimal(0)
    link = absolute(reverse("costs-dash:suggestions") + f"?team={team.slug}&status=open")
    lines = [
        f"- {s.get_kind_display()}: {s.title} (saves ~{s.estimated_monthly_saving}/month)"
        for s in rows
    ]
    body = (
        f"{open_qs.count()} open cost suggestions for {team.name}, together about {total} a "
        "month:\n" + "\n".join(lines) + f"\n\nReview them: {link}\n"
    )
    subject = f"[Tollgate] Weekly cost digest for {team.name}: ~{total}/month to save"
    return Message(team_recipients(team, leads_only=True), subject, body, link)


__all__ = ["User", "budget_alert_message", "digest_message", "team_recipients"]
