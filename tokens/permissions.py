"""Token scopes: a token with only ``read`` may not change anything."""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

from .models import ApiToken, Scope


class TokenScopes(BasePermission):
    """Session users pass; token callers need ``read`` for safe methods, ``write`` otherwise."""

    message = "This API token's scopes do not allow this request."

    def has_permission(self, request, view) -> bool:
        token = request.auth
        if not isinstance(token, ApiToken):
            return True
        needed = Scope.READ if request.method in SAFE_METHODS else Scope.WRITE
        return needed in (token.scopes or [])
