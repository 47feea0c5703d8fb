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

from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission

from .models import ApiToken
from .services import api_token_touch, hash_secret

KEYWORD = "Bearer"
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


CHECK_SCOPE = "check"
CHECK_ANY_SERVICE_SCOPE = "check:*"


class ServiceTokenAuthentication(BearerTokenAuthentication):
    """Bearer tokens on the check API: service tokens are accepted (user = None)."""

    allow_service_tokens = True

    def authenticate_credentials(self, plaintext: str):
        digest = hash_secret(plaintext)
        token = ApiToken.objects.select_related("user", "service").filter(key_hash=digest).first()
        if token is None or not hmac.compare_digest(token.key_hash, digest):
            raise exceptions.AuthenticationFailed("Invalid token.")
        now = timezone.now()
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This token has been revoked.")
        if token.is_expired(now):
            raise exceptions.AuthenticationFailed("This token has expired.")
        if token.user_id is not None and not token.user.is_active:
            raise exceptions.AuthenticationFailed("The token's owner is not active.")
        api_token_touch(token=token, now=now)
        return (token.user, token)


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
