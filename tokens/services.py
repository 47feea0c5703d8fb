"""Every write to API tokens. Each service owns its transaction and writes the audit event."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.services import audit_record
from portal.core.actors import LEAVER
from portal.core.errors import Conflict, NotFound, NotPermitted, ValidationError

from . import registry as actions
from .models import DEFAULT_SCOPES, PREFIX_LENGTH, ApiToken, Scope
from .policies import may_create_token_for, may_manage_service_tokens, may_revoke_token

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
    expires_at: datetime | None = None,
) -> tuple[ApiToken, str]:
    """Create a personal token for ``user``; returns the token and its plaintext (shown once)."""
    if not may_create_token_for(actor, user):
        raise NotPermitted("people create their own API tokens only")
    name = _clean_name(name)
    if not user.is_active:
        raise ValidationError(f"{user.email} is not active", field="user")
    return _token_insert(
        actor=actor,
        owner={"user": user},
        audit_owner={"user": user.email},
        name=name,
        scopes=_clean_scopes(scopes),
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
