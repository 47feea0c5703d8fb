"""Pages for anomaly decisions (dismiss as expected, snooze) and alert subscriptions.

Thin views: parse, scope (an anomaly the viewer may not see is 404), call one service."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from portal.core.errors import DomainError

from .analytics import alerts, selectors
from .analytics.models import AnomalySubscription, AnomalySuppression
from .analytics.policies import may_view_org_costs


@require_POST
@login_required
def anomaly_decide(request, pk: int, action: str):
    anomaly = selectors.anomaly_get_for_viewer(viewer=request.user, pk=pk)
    try:
        if action == "dismiss":
            alerts.anomaly_dismiss(
                actor=request.user,
                anomaly_id=anomaly.pk,
                reason=request.POST.get("reason", ""),
                pattern=request.POST.get("pattern", ""),
            )
            messages.success(request, "Dismissed as expected: the detector skips that pattern.")
        elif action == "snooze":
            try:
                hours = int(request.POST.get("hours", "24"))
            except ValueError:
                hours = 0
            alerts.anomaly_snooze(
                actor=request.user,
                anomaly_id=anomaly.pk,
                until=timezone.now() + dt.timedelta(hours=hours),
            )
            messages.success(request, f"Snoozed for {hours} hours.")
        else:
            messages.error(request, "unknown action")
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect(reverse("costs-dash:anomalies") + f"?team={anomaly.team.slug}")


@require_http_methods(["GET", "POST"])
@login_required
def subscriptions(request):
    if request.method == "POST":
        try:
            if request.POST.get("end"):
                alerts.subscription_end(
                    actor=request.user, subscription_id=int(request.POST["end"])
                )
                messages.success(request, "Subscription ended.")
            else:
                alerts.subscription_create(
                    actor=request.user,
                    scope=request.POST.get("scope", ""),
                    team_slug=request.POST.get("team", ""),
                    service_name=request.POST.get("service_name", ""),
                    min_impact=request.POST.get("min_impact") or 0,
                    cadence=request.POST.get("cadence", ""),
                    channel=request.POST.get("channel", ""),
                    chat_webhook_url=request.POST.get("chat_webhook_url", ""),
                )
                messages.success(request, "Subscribed.")
        except (DomainError, ValueError) as exc:
            messages.error(request, getattr(exc, "message", str(exc)))
        return redirect(reverse("costs-dash:anomaly-subscriptions"))
    return render(
        request,
        "costs/dashboard/anomaly_subscriptions.html",
        {
            "subscriptions": AnomalySubscription.objects.filter(user=request.user, active=True)
            .select_related("team")
            .order_by("id"),
            "scopes": AnomalySubscription.Scope.choices,
            "cadences": AnomalySubscription.Cadence.choices,
            "channels": AnomalySubscription.Channel.choices,
            "patterns": AnomalySuppression.Pattern.choices,
            "org_view": may_view_org_costs(request.user),
        },
    )
