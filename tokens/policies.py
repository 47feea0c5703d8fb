"""Who may do what with API tokens."""

from __future__ import annotations

from accounts.policies import is_platform_admin

from .models import ApiToken


def may_create_token_for(actor, user) -> bool:
    """People make their own personal tokens (system actors, e.g. the CLI, may too)."""
    if isinstance(actor, str):
        return True
    return bool(getattr(actor, "is_active", False)) and actor.pk == user.pk


def may_revoke_token(actor, token: ApiToken) -> bool:
    """The owner revokes their own token; platform admins revoke any."""
    if isinstance(actor, str):
        return True
    return (token.user_id is not None and token.user_id == actor.pk) or is_platform_admin(actor)


def may_manage_service_tokens(actor) -> bool:
    """Service tokens (the check API's callers) are created and listed by platform admins
    (and by system actors such as the CLI); any token is revocable by an admin."""
    if isinstance(actor, str):
        return True
    return is_platform_admin(actor)
