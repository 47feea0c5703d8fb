"""Every write to people and teams. Each service owns its transaction and audits."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from audit import registry as actions
from audit.services import audit_record
from portal.core.errors import NotPermitted, ValidationError

from .models import PlatformRole, User
from .policies import may_change_roles

# Later issues register hooks here (revoke API tokens, revoke grants); each is called
# inside the leaver's transaction with (user=..., actor=...).
LEAVER_HOOKS: list = []


def user_end_sessions(*, user: User) -> int:
    """End every session of ``user`` now.

    Bumping ``session_version`` changes the session auth hash, which Django checks on
    each request, so every existing session (any backend) stops authenticating at once.
    Database session rows that belong to the user are also deleted.
    """
    User.objects.filter(pk=user.pk).update(session_version=F("session_version") + 1)
    user.refresh_from_db(fields=["session_version"])
    ended = 0
    uid = str(user.pk)
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if session.get_decoded().get("_auth_user_id") == uid:
            session.delete()
            ended += 1
    return ended


def user_mark_leaver(*, user: User, actor, reason: str = "", end_date=None) -> User:
    """Deactivate a leaver and end their sessions (plus registered leaver hooks)."""
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        if user.status == User.Status.LEAVER and not user.is_active:
            return user
        before = {"status": user.status, "is_active": user.is_active, "end_date": user.end_date}
        user.status = User.Status.LEAVER
        user.is_active = False
        user.end_date = end_date or user.end_date or timezone.localdate()
        user.save(update_fields=["status", "is_active", "end_date"])
        sessions = user_end_sessions(user=user)
        for hook in LEAVER_HOOKS:
            hook(user=user, actor=actor)
        audit_record(
            actor=actor,
            action=actions.USER_LEFT,
            target=user,
            before=before,
            after={
                "status": user.status,
                "is_active": False,
                "end_date": user.end_date,
                "sessions_ended": sessions,
            },
            reason=reason or "leaver",
        )
    return user


def user_set_roles(*, actor, user: User, roles: list[str], reason: str = "") -> list[str]:
    """Replace the user's platform roles. Only platform admins may; nobody edits their own."""
    if actor is not None and not isinstance(actor, str):
        if not may_change_roles(actor):
            raise NotPermitted("only platform admins change roles")
        if actor.pk == user.pk:
            raise NotPermitted("nobody changes their own platform roles")
    valid = {r.value for r in PlatformRole}
    unknown = sorted(set(roles) - valid)
    if unknown:
        raise ValidationError(
            f"unknown role(s): {', '.join(unknown)}; valid: {', '.join(sorted(valid))}",
            field="roles",
        )
    with transaction.atomic():
        before = sorted(user.groups.filter(name__in=valid).values_list("name", flat=True))
        after = sorted(set(roles))
        if before == after:
            return after
        groups = [Group.objects.get_or_create(name=name)[0] for name in after]
        user.groups.remove(*user.groups.filter(name__in=valid))
        user.groups.add(*groups)
        if hasattr(user, "_tollgate_roles"):
            del user._tollgate_roles
        audit_record(
            actor=actor,
            action=actions.USER_ROLES_CHANGED,
            target=user,
            before={"roles": before},
            after={"roles": after},
            reason=reason,
        )
    return after
