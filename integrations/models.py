"""Chat integrations (Slack): who is who in Slack, where requests are announced, the outbox of
messages kept in step with each request, and the signatures already seen (replay guard)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class SlackIdentity(models.Model):
    """A person's Slack user id. Linked by ``users.lookupByEmail`` when the bot first needs it,
    or by ``manage.py slack_link``. A removed link is kept (``removed_at``) so that the bot does
    not link the person again by e-mail behind their back; ``slack_link`` links them again."""

    class Via(models.TextChoices):
        LOOKUP = "lookup", "users.lookupByEmail"
        COMMAND = "command", "manage.py slack_link"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="slack_identities"
    )
    slack_user_id = models.CharField(max_length=32)
    via = models.CharField(max_length=8, choices=Via.choices)
    created_at = models.DateTimeField(default=timezone.now)
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "Slack identities"
        constraints = [
            models.UniqueConstraint(
                fields=["user"], condition=Q(removed_at=None), name="one_live_slack_link_per_user"
            ),
            models.UniqueConstraint(
                fields=["slack_user_id"],
                condition=Q(removed_at=None),
                name="one_live_link_per_slack_user",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.slack_user_id} = {self.user_id}"


class SlackRoute(models.Model):
    """Announce requests to a channel (besides the approvers' DMs) when every criterion that is
    set matches: the entitlement's service, the principal's team, a risk at least ``min_risk``."""

    channel_id = models.CharField(max_length=32)
    service = models.ForeignKey(
        "access.Service", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    min_risk = models.CharField(max_length=16, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["channel_id", "pk"]

    def __str__(self) -> str:
        return f"route #{self.pk} -> {self.channel_id}"


class SlackEvent(models.Model):
    """Outbox: something happened to a request (written in the transaction of the change).
    A task turns it into message rows to post or update; the sweeper re-sends lost ones."""

    request = models.ForeignKey("access.AccessRequest", on_delete=models.CASCADE, related_name="+")
    event = models.CharField(max_length=24)
    created_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["created_at"], condition=Q(processed_at=None), name="slack_event_open"
            )
        ]

    def __str__(self) -> str:
        return f"{self.event} of request #{self.request_id}"


class SlackMessage(models.Model):
    """One copy of a request's message in Slack: an approver's DM, a channel post, or the
    requester's DM of the outcome / of the access being active. ``wanted`` is bumped each time
    the request changes; a delivery renders the request as it is now and posts (first time) or
    updates in place (``chat.update`` on the stored ``channel`` and ``ts``) until ``sent``
    catches up. Desired state, so a repeat delivery is harmless."""

    class Kind(models.TextChoices):
        APPROVER = "approver", "Approver's DM"
        CHANNEL = "channel", "Channel post"
        OUTCOME = "outcome", "Requester's DM of the outcome"
        ACTIVE = "active", "Requester's DM that the access is active"

    class Status(models.TextChoices):
        PENDING = "pending", "To deliver"
        DONE = "done", "Delivered"
        SKIPPED = "skipped", "Not in Slack"
        FAILED = "failed", "Failed"

    request = models.ForeignKey("access.AccessRequest", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # A route's channel before the first post; the DM or channel id Slack answered after it.
    channel = models.CharField(max_length=32, blank=True)
    ts = models.CharField(max_length=32, blank=True)
    wanted = models.PositiveIntegerField(default=1)
    sent = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "kind", "recipient"],
                condition=Q(recipient__isnull=False),
                name="one_slack_message_per_person",
            ),
            models.UniqueConstraint(
                fields=["request", "kind", "channel"],
                condition=Q(recipient__isnull=True),
                name="one_slack_message_per_channel",
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="slack_message_due",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} of request #{self.request_id}"


class SlackSeenSignature(models.Model):
    """Signatures of Slack requests already accepted, kept past the five-minute window: a
    replay hits the unique constraint. In PostgreSQL, not Redis, so that a Redis restarted
    empty (or from an older snapshot) cannot make a replay look new."""

    signature = models.CharField(max_length=80, unique=True)
    request_ts = models.BigIntegerField()
    seen_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"signature at {self.request_ts}"
