"""Anomaly alerts people subscribe to, and what people decide about an anomaly.

* A **subscription** (per team, per provider service, or the org) has a minimum impact, a
  cadence (immediate, daily digest, weekly digest) and a channel (the subscriber's e-mail,
  or a chat channel's incoming webhook). Alerts only ever carry anomalies of teams whose
  costs the subscriber may see (checked when they are sent, not only when subscribing).
* :func:`anomaly_alerts_run` (after each detection, and from beat) wakes anomalies whose
  snooze ended, then writes the due deliveries (``AnomalyDelivery``, the outbox: one row per
  subscription and anomaly, never twice) and enqueues their sending after commit.
* An anomaly is **acknowledged**, **dismissed as expected** (with a reason and a pattern,
  which becomes an ``AnomalySuppression`` the detector honours for that series), or
  **snoozed** until a time (no alert meanwhile; it reopens afterwards).
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
from decimal import Decimal

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from access.notifications import Message, absolute, send_email
from accounts.models import Team
from audit.services import audit_record
from portal.core.actors import COST_ANALYTICS, actor_may, actor_user
from portal.core.errors import NotPermitted, ValidationError
from portal.core.queue import enqueue_on_commit
from portal.core.state import transition

from ..policies import cost_team_ids_for
from ..state import ANOMALY_TRANSITIONS
from . import audit_actions as actions
from .models import Anomaly, AnomalyDelivery, AnomalySubscription, AnomalySuppression
from .policies import may_act_on_team_costs, may_view_org_costs, may_view_team_costs

S = AnomalySubscription
DIGEST_EVERY: dict[str, dt.timedelta] = {
    S.Cadence.DAILY: dt.timedelta(days=1),
    S.Cadence.WEEKLY: dt.timedelta(days=7),
}
# a digest counts as due a little early, so a beat that drifts by minutes keeps its day
DIGEST_SLACK = dt.timedelta(minutes=30)
# a "level" dismissal skips later spikes of the series up to 10 % above the dismissed one
LEVEL_TOLERANCE = Decimal("1.10")


# --- subscriptions ---------------------------------------------------------------------------


def subscription_create(
    *,
    actor,
    scope: str,
    cadence: str,
    channel: str,
    team_slug: str = "",
    service_name: str = "",
    min_impact: Decimal | str | int = 0,
    chat_webhook_url: str = "",
) -> AnomalySubscription:
    """Subscribe ``actor`` (a person) to anomaly alerts. A team the subscriber may not see is
    refused as if it did not exist; the org scope is for the org-wide roles."""
    user = actor_user(actor)
    if user is None:
        raise NotPermitted("a person subscribes")
    if scope not in S.Scope.values:
        raise ValidationError(f"scope must be one of: {', '.join(S.Scope.values)}", field="scope")
    if cadence not in S.Cadence.values:
        raise ValidationError(
            f"cadence must be one of: {', '.join(S.Cadence.values)}", field="cadence"
        )
    if channel not in S.Channel.values:
        raise ValidationError(
            f"channel must be one of: {', '.join(S.Channel.values)}", field="channel"
        )
    try:
        minimum = Decimal(str(min_impact or 0)).quantize(Decimal("0.01"))
    except ArithmeticError:
        raise ValidationError("min_impact must be a number", field="min_impact") from None
    if not minimum.is_finite() or minimum < 0 or minimum >= Decimal("1e15"):
        raise ValidationError("min_impact must be zero or more", field="min_impact")
    team = None
    if scope == S.Scope.TEAM:
        team = Team.objects.filter(slug=team_slug).first()
        if team is None or not may_view_team_costs(user, team):
            raise ValidationError(f"no such team: {team_slug!r}", field="team")
    elif scope == S.Scope.ORG and not may_view_org_costs(user):
        raise NotPermitted("org-wide alerts are for finance, admins, security and auditors")
    service_name = (service_name or "").strip()[:200]
    if scope == S.Scope.SERVICE and not service_name:
        raise ValidationError("name the service", field="service_name")
    url = (chat_webhook_url or "").strip()
    if channel == S.Channel.CHAT and not url.startswith("https://"):
        raise ValidationError(
            "a chat channel needs its https:// webhook URL", field="chat_webhook_url"
        )
    with transaction.atomic(durable=True):
        sub = AnomalySubscription.objects.create(
            user=user,
            scope=scope,
            team=team,
            service_name=service_name if scope == S.Scope.SERVICE else "",
            min_impact=minimum,
            cadence=cadence,
            channel=channel,
            chat_webhook_url=url if channel == S.Channel.CHAT else "",
        )
        audit_record(
            actor=actor,
            action=actions.ANOMALY_SUBSCRIBED,
            target=sub,
            after={
                "scope": scope,
                "team": team.slug if team else "",
                "service": sub.service_name,
                "min_impact": str(minimum),
                "cadence": cadence,
                "channel": channel,
            },
        )
    return sub


def subscription_end(*, actor, subscription_id: int) -> None:
    """End one of ``actor``'s own subscriptions (anyone else's is not found)."""
    user = actor_user(actor)
    with transaction.atomic(durable=True):
        sub = (
            AnomalySubscription.objects.select_for_update()
            .filter(pk=subscription_id, user=user, active=True)
            .first()
        )
        if sub is None:
            raise ValidationError("no such subscription", field="subscription")
        sub.active = False
        sub.save(update_fields=["active"])
        audit_record(actor=actor, action=actions.ANOMALY_UNSUBSCRIBED, target=sub)


# --- decisions on an anomaly -----------------------------------------------------------------


def _locked(anomaly_id: int, actor) -> Anomaly:
    anomaly = (
        Anomaly.objects.select_for_update(of=("self",)).select_related("team").get(pk=anomaly_id)
    )
    if not actor_may(actor, lambda user: may_act_on_team_costs(user, anomaly.team)):
        raise NotPermitted("only the team's leads and managers, finance and admins")
    return anomaly


def anomaly_dismiss(*, actor, anomaly_id: int, reason: str, pattern: str) -> Anomaly:
    """Dismiss as expected; the detector then skips ``pattern`` for this team × service."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("say why the anomaly is expected", field="reason")
    if pattern not in AnomalySuppression.Pattern.values:
        raise ValidationError(
            f"pattern must be one of: {', '.join(AnomalySuppression.Pattern.values)}",
            field="pattern",
        )
    with transaction.atomic(durable=True):
        anomaly = _locked(anomaly_id, actor)
        transition(
            anomaly,
            table=ANOMALY_TRANSITIONS,
            action="dismiss",
            actor=actor,
            audit_action=actions.ANOMALY_DISMISSED,
            reason=reason[:500],
            extra_fields={
                "dismiss_reason": reason[:500],
                "decided_by": actor_user(actor),
                "snoozed_until": None,
            },
            after_extra={"pattern": pattern},
        )
        P = AnomalySuppression.Pattern
        AnomalySuppression.objects.create(
            team=anomaly.team,
            service_name=anomaly.service_name,
            pattern=pattern,
            weekday=anomaly.day.weekday() if pattern == P.WEEKDAY else None,
            monthday=anomaly.day.day if pattern == P.MONTHDAY else None,
            max_actual=(anomaly.actual * LEVEL_TOLERANCE).quantize(Decimal("0.01"))
            if pattern == P.LEVEL
            else None,
            reason=reason[:500],
            anomaly=anomaly,
            created_by=actor_user(actor),
        )
    return anomaly


def anomaly_snooze(*, actor, anomaly_id: int, until: dt.datetime) -> Anomaly:
    if until <= timezone.now():
        raise ValidationError("snooze until a time in the future", field="until")
    if until > timezone.now() + dt.timedelta(days=90):
        raise ValidationError("snooze for at most 90 days", field="until")
    with transaction.atomic(durable=True):
        anomaly = _locked(anomaly_id, actor)
        transition(
            anomaly,
            table=ANOMALY_TRANSITIONS,
            action="snooze",
            actor=actor,
            audit_action=actions.ANOMALY_SNOOZED,
            extra_fields={"snoozed_until": until, "decided_by": actor_user(actor)},
            after_extra={"until": until.isoformat()},
        )
    return anomaly


def suppressed(suppressions: list[AnomalySuppression], day: dt.date, actual: Decimal) -> bool:
    """Whether a dismissal taught the detector to skip this day's spike of the series."""
    for s in suppressions:
        if s.pattern == AnomalySuppression.Pattern.WEEKDAY and day.weekday() == s.weekday:
            return True
        if s.pattern == AnomalySuppression.Pattern.MONTHDAY and day.day == s.monthday:
            return True
        if (
            s.pattern == AnomalySuppression.Pattern.LEVEL
            and s.max_actual is not None
            and actual <= s.max_actual
        ):
            return True
    return False


# --- alerts ----------------------------------------------------------------------------------


def _matching(sub: AnomalySubscription, since: dt.datetime | None):
    qs = Anomaly.objects.filter(status=Anomaly.Status.OPEN, impact__gte=sub.min_impact)
    if sub.scope == S.Scope.TEAM:
        qs = qs.filter(team_id=sub.team_id or 0)
    elif sub.scope == S.Scope.SERVICE:
        qs = qs.filter(service_name__iexact=sub.service_name)
    visible = cost_team_ids_for(sub.user)
    if visible is not None:
        qs = qs.filter(team_id__in=visible)
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    return qs.exclude(pk__in=sub.deliveries.values("anomaly_id")).order_by("-impact", "id")


def anomaly_alerts_run(*, now: dt.datetime | None = None) -> dict:
    """Wake ended snoozes, write the due deliveries and enqueue them. Returns counts."""
    now = now or timezone.now()
    woke = due = 0
    with transaction.atomic(durable=True):
        for anomaly in Anomaly.objects.select_for_update().filter(
            status=Anomaly.Status.SNOOZED, snoozed_until__lte=now
        ):
            transition(
                anomaly,
                table=ANOMALY_TRANSITIONS,
                action="wake",
                actor=COST_ANALYTICS,
                audit_action=actions.ANOMALY_WOKE,
                extra_fields={"snoozed_until": None},
            )
            woke += 1
        subs = AnomalySubscription.objects.select_for_update().filter(
            active=True, user__is_active=True
        )
        for sub in subs.select_related("user"):
            if sub.cadence != S.Cadence.IMMEDIATE:
                every = DIGEST_EVERY[sub.cadence]
                if sub.last_sent_at is not None and now - sub.last_sent_at < every - DIGEST_SLACK:
                    continue
            # an anomaly found before the subscription existed is not news to send
            anomalies = list(_matching(sub, since=sub.created_at)[:200])
            if not anomalies:
                continue
            AnomalyDelivery.objects.bulk_create(
                [AnomalyDelivery(subscription=sub, anomaly=a, created_at=now) for a in anomalies]
            )
            sub.last_sent_at = now
            sub.save(update_fields=["last_sent_at"])
            due += len(anomalies)
            from .tasks import anomaly_alert_send

            enqueue_on_commit(anomaly_alert_send, sub.pk)
    return {"woke": woke, "deliveries": due}


def alert_message(sub: AnomalySubscription, anomalies: list[Anomaly]) -> Message:
    link = absolute(reverse("costs-dash:anomalies") + "?status=open")
    labels: dict[str, str] = {
        S.Scope.TEAM: sub.team.name if sub.team else "",
        S.Scope.SERVICE: sub.service_name,
        S.Scope.ORG: "the org",
    }
    scope = labels[sub.scope]
    if len(anomalies) == 1 and sub.cadence == S.Cadence.IMMEDIATE:
        a = anomalies[0]
        subject = (
            f"[Tollgate] Cost anomaly: {a.team.name} {a.service_name} on {a.day} (+{a.impact:.2f})"
        )
    else:
        kind = {"immediate": "New", "daily": "Daily", "weekly": "Weekly"}[sub.cadence]
        subject = f"[Tollgate] {kind} cost anomalies for {scope}: {len(anomalies)}"
    lines = [
        f"- {a.day} {a.team.name} / {a.service_name}: {a.actual:.2f} against {a.expected:.2f} "
        f"expected (+{a.impact:.2f}). {a.reason}"
        for a in anomalies
    ]
    body = "\n".join(lines) + f"\n\nAcknowledge, dismiss or snooze: {link}\n"
    return Message([sub.user.email], subject, body, link)


def post_to_channel(url: str, message: Message) -> None:
    """POST a Slack-compatible payload to the subscription's webhook (OSError on failure)."""
    if not url.startswith("https://") and not url.startswith("http://127.0.0.1"):
        raise OSError("a chat webhook must be https")
    body = json.dumps({"text": f"{message.subject}\n{message.body}"}).encode()
    req = urllib.request.Request(  # noqa: S310 - https (or the loopback in tests) only
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310
        if resp.status >= 300:
            raise OSError(f"chat webhook answered {resp.status}")


def anomaly_alert_deliver(*, subscription_id: int) -> int:
    """Send the subscription's unsent deliveries in one message; mark them sent."""
    sub = AnomalySubscription.objects.select_related("user", "team").get(pk=subscription_id)
    pending = list(
        AnomalyDelivery.objects.filter(subscription=sub, sent_at__isnull=True)
        .select_related("anomaly__team")
        .order_by("-anomaly__impact", "id")
    )
    if not pending:
        return 0
    visible = cost_team_ids_for(sub.user)
    anomalies = [d.anomaly for d in pending if visible is None or d.anomaly.team_id in visible]
    if anomalies:
        message = alert_message(sub, anomalies)
        if sub.channel == S.Channel.CHAT:
            post_to_channel(sub.chat_webhook_url, message)
        else:
            send_email(message)
    AnomalyDelivery.objects.filter(pk__in=[d.pk for d in pending]).update(sent_at=timezone.now())
    return len(anomalies)
