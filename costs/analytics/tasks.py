"""Celery entry points of cost analytics (queue ``reports``), listed in ``CELERY_IMPORTS``.

Beat: ``cost_analytics_daily`` (resource rollups of changed periods, anomalies, suggestions,
realised savings, budget alerts) and ``cost_digest_weekly``. Periodic tasks take an
advisory lock so two beats never overlap.
"""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from django.db import transaction

from access.notifications import deliver
from accounts.models import Team
from portal.core.locks import advisory_lock
from portal.core.queue import enqueue_on_commit

logger = logging.getLogger(__name__)


@shared_task(name="costs.analytics.tasks.cost_analytics_daily", ignore_result=True)
def cost_analytics_daily() -> None:
    from . import services, suggestions
    from .rollups import resource_rollups_refresh

    with advisory_lock("costs.analytics.daily") as acquired:
        if not acquired:
            return
        resource_rollups_refresh()
        services.anomalies_detect()
        from .alerts import anomaly_alerts_run

        anomaly_alerts_run()
        suggestions.suggestions_run()
        suggestions.suggestions_measure_realised()
        with transaction.atomic():
            services.budget_alerts_evaluate()


@shared_task(name="costs.analytics.tasks.budget_alert_notify", ignore_result=True, acks_late=True)
def budget_alert_notify(alert_id: int) -> None:
    from . import services
    from .models import BudgetAlert
    from .notifications import budget_alert_message

    alert = BudgetAlert.objects.select_related("team").filter(pk=alert_id).first()
    if alert is None or alert.sent_at is not None:
        return
    deliver(budget_alert_message(alert), channels=("email",))
    services.budget_alert_mark_sent(alert_id=alert.pk)
    budget_alert_chat.delay(alert.pk)


@shared_task(
    name="costs.analytics.tasks.budget_alert_chat",
    ignore_result=True,
    acks_late=True,
    autoretry_for=(OSError,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def budget_alert_chat(alert_id: int) -> None:
    """The chat-webhook half, retried on its own so a flaky webhook never resends e-mail."""
    from .models import BudgetAlert
    from .notifications import budget_alert_message

    alert = BudgetAlert.objects.select_related("team").filter(pk=alert_id).first()
    if alert is not None:
        deliver(budget_alert_message(alert), channels=("chat",))


@shared_task(
    name="costs.analytics.tasks.anomaly_alert_send",
    ignore_result=True,
    acks_late=True,
    autoretry_for=(OSError,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def anomaly_alert_send(subscription_id: int) -> None:
    """Deliver one subscription's pending anomaly alerts (idempotent: sent rows are marked)."""
    from .alerts import anomaly_alert_deliver

    anomaly_alert_deliver(subscription_id=subscription_id)


@shared_task(name="costs.analytics.tasks.cost_digest_weekly", ignore_result=True)
def cost_digest_weekly() -> None:
    from .models import Suggestion

    with advisory_lock("costs.analytics.digest") as acquired:
        if not acquired:
            return
        team_ids = (
            Suggestion.objects.filter(status=Suggestion.Status.OPEN, team__isnull=False)
            .values_list("team_id", flat=True)
            .distinct()
        )
        for team_id in sorted(set(team_ids)):
            cost_digest_team.delay(team_id)


@shared_task(name="costs.analytics.tasks.cost_digest_team", ignore_result=True, acks_late=True)
def cost_digest_team(team_id: int) -> None:
    from .notifications import digest_message

    team = Team.objects.filter(pk=team_id).first()
    if team is None:
        return
    message = digest_message(team)
    if message is not None and message.to:
        deliver(message, channels=("email",))


@shared_task(
    name="costs.analytics.tasks.resource_rollups_for_periods", ignore_result=True, acks_late=True
)
def resource_rollups_for_periods(periods: list[str]) -> None:
    """Rebuild the resource rollups of the periods an import or re-attribution just changed
    (enqueued on commit, so dashboards are fresh without slowing the import itself)."""
    from .rollups import resource_rollups_rebuild

    resource_rollups_rebuild(periods=[dt.date.fromisoformat(p) for p in periods])


def enqueue_resource_rollups(periods) -> None:
    """Call inside the transaction that changed the lines of ``periods``."""
    keys = sorted({p.isoformat() for p in periods})
    if keys:
        enqueue_on_commit(resource_rollups_for_periods, keys)
