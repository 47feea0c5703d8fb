"""DRF authentication by ``Authorization: Bearer <token>``.

The secret is hashed (SHA-256) and looked up by its hash, so the secret itself is never
compared byte by byte; the final equality check uses ``hmac.compare_digest`` anyway.
Revoked or expired tokens, service tokens (on user endpoints) and tokens of inactive
people are refused with 401. :class:`ServiceTokenAuthentication` (the check API only)
also accepts service tokens; :class:`ServiceTokenRequired` then refuses every other
caller with 403 (personal tokens and sessions may not ask about other people's access).
"""

from __future__ import annotations

import hmac
import logging
from datetime import datetime

from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_save
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission

from portal.core.cache import LIFE_KEY, same_life
from portal.core.nearcache import delete_many_notify, set_many_notify

from .models import ApiToken
from .services import CHECK_ANY_SERVICE_SCOPE, CHECK_SCOPE, api_token_touch, hash_secret

logger = logging.getLogger(__name__)

KEYWORD = "Bearer"
TOUCH_EVERY_SECONDS = 60
MAX_TOKEN_LENGTH = 200


class BearerTokenAuthentication(BaseAuthentication):
    keyword = KEYWORD
    allow_service_tokens = False

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None  # not ours: let the next class (session) try
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Malformed Authorization header: use 'Bearer <token>'."
            )
        try:
            plaintext = header[1].decode("ascii")
        except UnicodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        if not plaintext or len(plaintext) > MAX_TOKEN_LENGTH:
            raise exceptions.AuthenticationFailed("Invalid token.")
        return self.authenticate_credentials(plaintext)

    def authenticate_credentials(self, plaintext: str):
        digest = hash_secret(plaintext)
        token = ApiToken.objects.select_related("user").filter(key_hash=digest).first()
        if token is None or not hmac.compare_digest(token.key_hash, digest):
            raise exceptions.AuthenticationFailed("Invalid token.")
        now = timezone.now()
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This token has been revoked.")
        if token.is_expired(now):
            raise exceptions.AuthenticationFailed("This token has expired.")
        if token.user_id is None:
            if not self.allow_service_tokens:
                raise exceptions.AuthenticationFailed("Service tokens are not accepted here.")
            return (None, token)
        user = token.user
        if not user.is_active:
            raise exceptions.AuthenticationFailed("The token's owner is not active.")
        api_token_touch(token=token, now=now)
        return (user, token)

    def authenticate_header(self, request) -> str:
        return f'{self.keyword} realm="tollgate"'


TOKEN_CACHE_PREFIX = "check:tok:"  # noqa: S105 (a cache key prefix)
TOKEN_CACHE_TTL = 60  # seconds; a revocation also deletes the entry on commit
_touched: dict[int, datetime] = {}  # per process: token id -> last touch we wrote


def token_cache_key(digest: str) -> str:
    return TOKEN_CACHE_PREFIX + digest


def _token_to_cache(token: ApiToken) -> dict:
    return {
        "id": token.pk,
        "service_id": token.service_id,
        "service_slug": token.service.slug,
        "name": token.name,
        "prefix": token.prefix,
        "scopes": list(token.scopes or []),
        "expires_at": token.expires_at.isoformat() if token.expires_at else None,
    }


_built: dict[str, tuple[dict, ApiToken]] = {}  # per process: digest -> (entry, its model)
_BUILT_LIMIT = 1_000


def _token_from_cache(digest: str, data: dict) -> ApiToken:
    """The token a cache entry describes; the model is built once per distinct entry.

    Building two model instances costs more than the rest of the check API's hot path,
    and a service sends the same token on every call. An entry equal to the one a model
    was built from describes the same token; the model is only read afterwards (except
    the ``last_used_at`` bookkeeping stamp).
    """
    built = _built.get(digest)
    if built is not None and built[0] == data:
        return built[1]
    token = _build_token(digest, data)
    if len(_built) >= _BUILT_LIMIT:
        _built.clear()
    _built[digest] = (data, token)
    return token


def _build_token(digest: str, data: dict) -> ApiToken:
    service_model = ApiToken._meta.get_field("service").related_model
    token = ApiToken(
        pk=data["id"],
        service_id=data["service_id"],
        name=data["name"],
        prefix=data["prefix"],
        key_hash=digest,
        scopes=data["scopes"],
        expires_at=parse_datetime(data["expires_at"]) if data["expires_at"] else None,
    )
    token.service = service_model(pk=data["service_id"], slug=data["service_slug"])
    token._state.adding = False
    return token


class ServiceTokenAuthentication(BearerTokenAuthentication):
    """Bearer tokens on the check API: service tokens are accepted (user = None).

    Live service tokens are cached in Redis by hash for ``TOKEN_CACHE_TTL`` seconds so the
    hot path needs no database; any save of a token (revocation) deletes its entry when
    the transaction commits. Revoked tokens are never cached. Redis down → database.
    """

    allow_service_tokens = True

    def authenticate_credentials(
        self, plaintext: str, *, prefetched: dict | None = None, was_read: bool = False
    ):
        """``prefetched``: the token's cache entry when the caller already read it (the
        check API's hot path reads it in the same round trip as the answer); ``was_read``:
        the caller read it and found none, so the database answers at once."""
        digest = hash_secret(plaintext)
        now = timezone.now()
        if prefetched:
            token: ApiToken | None = _token_from_cache(digest, prefetched)
        else:
            token = None if was_read else self._cached(digest)
        if token is None:
            token = (
                ApiToken.objects.select_related("user", "service").filter(key_hash=digest).first()
            )
            if token is None or not hmac.compare_digest(token.key_hash, digest):
                raise exceptions.AuthenticationFailed("Invalid token.")
            if token.revoked_at is not None:
                raise exceptions.AuthenticationFailed("This token has been revoked.")
            if token.user_id is not None and not token.user.is_active:
                raise exceptions.AuthenticationFailed("The token's owner is not active.")
            if token.service_id is not None:
                self._store(digest, token)
        if token.is_expired(now):
            raise exceptions.AuthenticationFailed("This token has expired.")
        last = _touched.get(token.pk)
        if last is None or (now - last).total_seconds() >= TOUCH_EVERY_SECONDS:
            token.last_used_at = last
            api_token_touch(token=token, now=now, every_seconds=TOUCH_EVERY_SECONDS)
            _touched[token.pk] = now
        return (token.user if token.user_id else None, token)

    @staticmethod
    def _cached(digest: str) -> ApiToken | None:
        key = token_cache_key(digest)
        try:
            found = cache.get_many([key, LIFE_KEY])
            if not same_life(found):  # Redis lost or rolled back its state: not trusted
                return None
        except Exception:  # noqa: BLE001 - Redis down: the database answers
            logger.warning("token cache unavailable", exc_info=True)
            return None
        data = found.get(key)
        return _token_from_cache(digest, data) if data else None

    @staticmethod
    def _store(digest: str, token: ApiToken) -> None:
        try:
            set_many_notify(
                {token_cache_key(digest): _token_to_cache(token)}, timeout=TOKEN_CACHE_TTL
            )
        except Exception:  # noqa: BLE001
            logger.warning("token cache write failed", exc_info=True)


def _forget_token(sender, instance: ApiToken, **kwargs) -> None:
    key = token_cache_key(instance.key_hash)

    def _delete() -> None:
        try:
            delete_many_notify([key])
        except Exception:  # noqa: BLE001 - the entry expires after TOKEN_CACHE_TTL
            logger.warning("token cache invalidation failed", exc_info=True)

    transaction.on_commit(_delete, robust=True)


post_save.connect(_forget_token, sender=ApiToken, dispatch_uid="token-cache-forget")


def service_token_may_check(token: ApiToken, service_slug: str) -> bool:
    """A service token checks its own service; ``check:*`` lets it check any service."""
    scopes = token.scopes or []
    if CHECK_ANY_SERVICE_SCOPE in scopes:
        return True
    return CHECK_SCOPE in scopes and token.service.slug == service_slug


class ServiceTokenRequired(BasePermission):
    """Only a live service token passes; anonymous callers get 401, anyone else 403."""

    message = "The check API accepts service tokens only (manage.py create_service_token)."

    def has_permission(self, request, view) -> bool:
        token = request.auth
        return isinstance(token, ApiToken) and token.service_id is not None
