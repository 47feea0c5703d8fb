"""Who is who in Slack: a person's Slack user id, linked and removed (audited)."""

from __future__ import annotations

import logging
import re

from django.db import IntegrityError, transaction
from django.utils import timezone
from slack_sdk.errors import SlackApiError

from accounts.models import User
from audit.services import audit_record
from portal.core.actors import CLI, SLACK, Actor, actor_may
from portal.core.errors import Conflict, NotFound, NotPermitted, ValidationError

from .. import registry as actions
from ..models import SlackIdentity
from ..policies import may_manage_slack_link
from . import client

logger = logging.getLogger(__name__)

SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,30}$")


def live_link(user: User) -> SlackIdentity | None:
    return SlackIdentity.objects.filter(user=user, removed_at=None).first()


def person_for_slack_user(slack_user_id: str) -> User | None:
    """The active person linked to this Slack user, or None (unlinked, unknown or a leaver)."""
    link = (
        SlackIdentity.objects.select_related("user")
        .filter(slack_user_id=slack_user_id, removed_at=None)
        .first()
    )
    if link is None or not link.user.is_active or link.user.status != User.Status.ACTIVE:
        return None
    return link.user


def slack_link_create(
    *, actor: Actor, user: User, slack_user_id: str, via: str = SlackIdentity.Via.COMMAND
) -> SlackIdentity:
    """Link ``user`` to ``slack_user_id`` (replacing the person's previous link). Refused when
    that Slack user is linked to someone else. Operators (``slack_link``) and the bot link."""
    if not actor_may(actor, lambda u: False, systems=[CLI, SLACK]):
        raise NotPermitted("Slack links are made by the bot or by an operator (slack_link)")
    if not SLACK_USER_ID.match(slack_user_id or ""):
        raise ValidationError(
            f"{slack_user_id!r} is not a Slack user id (like U012ABCDEF)", field="slack_user_id"
        )
    if not user.is_active:
        raise ValidationError(f"{user.email} is not active", field="email")
    try:
        with transaction.atomic():
            current = live_link(user)
            if current is not None and current.slack_user_id == slack_user_id:
                return current
            taken = (
                SlackIdentity.objects.filter(slack_user_id=slack_user_id, removed_at=None)
                .exclude(user=user)
                .select_related("user")
                .first()
            )
            if taken is not None:
                raise Conflict(
                    f"Slack user {slack_user_id} is already linked to {taken.user.email}",
                    field="slack_user_id",
                )
            before = None
            if current is not None:
                before = {"slack_user_id": current.slack_user_id}
                current.removed_at = timezone.now()
                current.save(update_fields=["removed_at"])
            link = SlackIdentity.objects.create(user=user, slack_user_id=slack_user_id, via=via)
            audit_record(
                actor=actor,
                action=actions.SLACK_LINKED,
                target=user,
                before=before,
                after={"slack_user_id": slack_user_id, "via": via},
            )
    except IntegrityError as exc:  # a concurrent link of the same person or Slack user
        raise Conflict(f"{user.email} or {slack_user_id} was linked meanwhile") from exc
    return link


def slack_link_remove(*, actor: Actor, user: User) -> None:
    """Remove a person's link (themselves, platform admins, security). The bot will not link
    them again by e-mail; an operator can (``slack_link``)."""
    if not actor_may(actor, lambda u: may_manage_slack_link(u, user), systems=[CLI]):
        raise NotFound("no such person")
    with transaction.atomic():
        link = live_link(user)
        if link is None:
            raise NotFound(f"{user.email} has no Slack link")
        link.removed_at = timezone.now()
        link.save(update_fields=["removed_at"])
        audit_record(
            actor=actor,
            action=actions.SLACK_UNLINKED,
            target=user,
            before={"slack_user_id": link.slack_user_id},
        )


def slack_user_id_for(user: User) -> str | None:
    """The person's Slack user id: their link, or ``users.lookupByEmail`` the first time the
    bot needs it (then linked, audited). None when they are not in the workspace or removed
    their link. Network I/O: call it outside any transaction. Raises on a transient error."""
    link = live_link(user)
    if link is not None:
        return link.slack_user_id
    if SlackIdentity.objects.filter(user=user).exists() or not user.email:
        return None  # they removed their link: not again behind their back
    try:
        answer = client.web_client().users_lookupByEmail(email=user.email)
    except SlackApiError as exc:
        if exc.response is not None and exc.response.get("error") == "users_not_found":
            return None
        raise
    slack_user_id = (answer.get("user") or {}).get("id", "")
    try:
        return slack_link_create(
            actor=SLACK, user=user, slack_user_id=slack_user_id, via=SlackIdentity.Via.LOOKUP
        ).slack_user_id
    except (Conflict, ValidationError):
        logger.warning("users.lookupByEmail gave %r for %s: not linked", slack_user_id, user.pk)
        return None
