"""Who may do what with API tokens."""

from __future__ import annotations

from accounts.policies import is_platform_admin
from portal.core.actors import CLI, actor_may

from .models import ApiToken


def may_create_token_for(actor, user) -> bool:
    """People make their own personal tokens; an operator's management command may make one
    for anybody."""
    return actor_may(
        actor,
        lambda person: bool(getattr(person, "is_active", False)) and person.pk == user.pk,
        systems=(CLI,),
    )


def may_revoke_token(actor, token: ApiToken) -> bool:
    """The owner revokes their own token; platform admins (and operators' commands) revoke any."""
    return actor_may(
        actor,
        lambda person: (
            (token.user_id is not None and token.user_id == person.pk) or is_platform_admin(person)
        ),
        systems=(CLI,),
    )


def may_manage_service_tokens(actor) -> bool:
    """Service tokens (the check API's callers) are created and listed by platform admins
    (and by operators' management commands); any token is revocable by an admin."""
    return actor_may(actor, is_platform_admin, systems=(CLI,))
