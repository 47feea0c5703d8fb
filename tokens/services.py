"""Every write to API tokens. Each service owns its transaction and writes the audit event."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.policies import POWERFUL_ROLES, holds_powerful_role
from audit.services import audit_record
from portal.core.actors import LEAVER, is_system
from portal.core.errors import Conflict, NotFound, NotPermitted, ValidationError

from . import registry as actions
from .models import DEFAULT_SCOPES, PREFIX_LENGTH, ApiToken, Scope
from .policies import may_create_token_for, may_manage_service_tokens, may_revoke_token

POWERFUL_TOKEN_MAX_DAYS = 30
DEFAULT_TOKEN_DAYS = 90


class _Default:
    """Marks "no expiry given" (the default applies), as opposed to None ("never")."""


DEFAULT_EXPIRY = _Default()
TOKEN_MARKER = "tg_"  # noqa: S105  (a public marker that secret scanners can spot)


def hash_secret(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def generate_secret() -> str:
    return TOKEN_MARKER + secrets.token_urlsafe(32)


def _clean_scopes(scopes: Iterable[str] | None) -> list[str]:
    if scopes is None:
        return list(DEFAULT_SCOPES)
    if isinstance(scopes, str):
        raise ValidationError("scopes must be a list", field="scopes")
    values = list(dict.fromkeys(scopes))
    unknown = sorted(str(s) for s in values if s not in Scope.values)
    if unknown:
        raise ValidationError(
            f"unknown scope(s): {', '.join(unknown)}; valid: {', '.join(Scope.values)}",
            field="scopes",
        )
    if not values:
        raise ValidationError("a token needs at least one scope", field="scopes")
    return [s for s in Scope.values if s in values]


def api_token_create(
    *,
    actor,
    user,
    name: str,
    scopes: Iterable[str] | None = None,
    expires_at: datetime | None | _Default = DEFAULT_EXPIRY,
    mfa_session: bool = False,
) -> tuple[ApiToken, str]:
    """Create a personal token for ``user``; returns the token and its plaintext (shown once).

    A token of a platform admin or security member carries their powers: it expires within
    ``POWERFUL_TOKEN_MAX_DAYS``, is made from a session that passed a second factor
    (``mfa_session``, when REQUIRE_MFA_FOR_ADMINS is on; an operator's command may make one),
    and is revoked when the person loses the role. Without ``expires_at`` a token expires after
    ``DEFAULT_TOKEN_DAYS`` (30 for powerful people); ``expires_at=None`` (never) is for
    read-only tokens of people without those roles.
    """
    if not may_create_token_for(actor, user):
        raise NotPermitted("people create their own API tokens only")
    name = _clean_name(name)
    if not user.is_active:
        raise ValidationError(f"{user.email} is not active", field="user")
    scopes = _clean_scopes(scopes)
    powerful = holds_powerful_role(user)
    if isinstance(expires_at, _Default):
        days = POWERFUL_TOKEN_MAX_DAYS if powerful else DEFAULT_TOKEN_DAYS
        expires_at = timezone.now() + timedelta(days=days)
    if powerful and settings.REQUIRE_MFA_FOR_ADMINS and not is_system(actor) and not mfa_session:
        raise NotPermitted(
            "a platform admin's or security member's token is made from a session that "
            "passed a second factor: sign in again with your authenticator"
        )
    if expires_at is None and (powerful or scopes != [Scope.READ.value]):
        raise ValidationError(
            "this token must expire: 'never' is for read-only tokens of people without "
            "administrative roles",
            field="expires_at",
        )
    limit = timezone.now() + timedelta(days=POWERFUL_TOKEN_MAX_DAYS)
    if powerful and expires_at is not None and expires_at > limit:
        raise ValidationError(
            f"a platform admin's or security member's token expires within "
            f"{POWERFUL_TOKEN_MAX_DAYS} days",
            field="expires_at",
        )
    return _token_insert(
        actor=actor,
        owner={"user": user},
        audit_owner={"user": user.email},
        name=name,
        scopes=scopes,
        expires_at=expires_at,
    )


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError("give the token a name", field="name")
    if len(name) > 100:
        raise ValidationError("the name is longer than 100 characters", field="name")
    return name


def _token_insert(
    *, actor, owner: dict, audit_owner: dict, name: str, scopes: list[str], expires_at
) -> tuple[ApiToken, str]:
    """Insert a token (personal: owner={"user": u}; service: {"service": s}) and audit it."""
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError("the expiry is in the past", field="expires_at")
    plaintext = generate_secret()
    with transaction.atomic():
        token = ApiToken.objects.create(
            **owner,
            name=name,
            prefix=plaintext[:PREFIX_LENGTH],
            key_hash=hash_secret(plaintext),
            scopes=scopes,
            expires_at=expires_at,
        )
        audit_record(
            actor=actor,
            action=actions.TOKEN_CREATED,
            target=token,
            after={
                **audit_owner,
                "name": name,
                "prefix": token.prefix,
                "scopes": scopes,
                "expires_at": expires_at,
            },
        )
    return token, plaintext


CHECK_SCOPE = "check"
CHECK_ANY_SERVICE_SCOPE = "check:*"


def service_token_create(
    *, actor, service, name: str, scope_all: bool = False, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """Create a service token for the check API; returns (token, plaintext), shown once.

    Scope ``check`` (its own service only); ``scope_all`` adds ``check:*`` (any service).
    """
    if not may_manage_service_tokens(actor):
        raise NotPermitted("only platform admins create service tokens")
    return _token_insert(
        actor=actor,
        owner={"service": service},
        audit_owner={"service": service.slug},
        name=_clean_name(name),
        scopes=[CHECK_SCOPE, CHECK_ANY_SERVICE_SCOPE] if scope_all else [CHECK_SCOPE],
        expires_at=expires_at,
    )


def _revoke(token: ApiToken, *, actor, reason: str) -> None:
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit_record(
        actor=actor,
        action=actions.TOKEN_REVOKED,
        target=token,
        before={"revoked_at": None},
        after={"revoked_at": token.revoked_at, "prefix": token.prefix, "name": token.name},
        reason=reason,
    )


def api_token_revoke(*, actor, token_id: int, reason: str = "") -> ApiToken:
    """Revoke one token. The owner or a platform admin may; anyone else gets NotFound."""
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().filter(pk=token_id).first()
        if token is None or not may_revoke_token(actor, token):
            raise NotFound("no such API token")
        if token.revoked_at is not None:
            raise Conflict("this token is already revoked")
        _revoke(token, actor=actor, reason=reason)
    return token


def api_tokens_revoke_for_leaver(*, user, actor) -> int:
    """Leaver hook (accounts.services.LEAVER_HOOKS): revoke every live token of ``user``."""
    revoked = 0
    with transaction.atomic():
        tokens = ApiToken.objects.select_for_update().filter(user=user, revoked_at__isnull=True)
        for token in tokens.order_by("pk"):
            _revoke(token, actor=actor if actor is not None else LEAVER, reason="leaver")
            revoked += 1
    return revoked


def api_tokens_revoke_for_lost_role(*, user, roles: list[str], actor) -> int:
    """Role hook (accounts.services.ROLE_REMOVED_HOOKS): a person who loses a powerful role
    loses every live token, since a token made while they held it carries it."""
    lost = sorted(set(roles) & set(POWERFUL_ROLES))
    if not lost:
        return 0
    revoked = 0
    with transaction.atomic():
        tokens = ApiToken.objects.select_for_update().filter(user=user, revoked_at__isnull=True)
        for token in tokens.order_by("pk"):
            _revoke(token, actor=actor, reason=f"lost role {', '.join(lost)}")
            revoked += 1
    return revoked


def api_token_touch(
    *, token: ApiToken, now: datetime | None = None, every_seconds: int = 60
) -> bool:
    """Stamp ``last_used_at`` at most once per ``every_seconds`` (bookkeeping, not audited)."""
    now = now or timezone.now()
    if (
        token.last_used_at is not None
        and (now - token.last_used_at).total_seconds() < every_seconds
    ):
        return False
    cutoff = now - timedelta(seconds=every_seconds)
    stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=cutoff)
    updated = ApiToken.objects.filter(pk=token.pk).filter(stale).update(last_used_at=now)
    if updated:
        token.last_used_at = now
    return bool(updated)
