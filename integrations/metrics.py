"""Scrape-time series of the Slack outbox (registered with ``portal.core.metrics``): messages
by state, and the age of the oldest one still to deliver (Slack down, or a stuck worker)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import Metric

from portal.core.metrics import gauge, register_collector

from .models import SlackMessage


def collect_slack() -> Iterable[Metric]:
    messages = gauge("tollgate_slack_messages", "Slack messages by delivery state.", ["status"])
    counts = dict(
        SlackMessage.objects.values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    for status in SlackMessage.Status.values:
        messages.add_metric([status], counts.get(status, 0))
    oldest = SlackMessage.objects.filter(status=SlackMessage.Status.PENDING).aggregate(
        t=Min("updated_at")
    )["t"]
    age = gauge(
        "tollgate_slack_oldest_pending_age_seconds",
        "Age of the oldest Slack message still to deliver (0 when none waits).",
    )
    age.add_metric([], (timezone.now() - oldest).total_seconds() if oldest is not None else 0.0)
    return [messages, age]


register_collector("integrations.slack", collect_slack)
