"""Who may do what with the chat integrations."""

from __future__ import annotations

from typing import Any

from accounts.policies import is_platform_admin, is_security


def may_manage_slack_link(viewer: Any, person: Any) -> bool:
    """A person sees and removes their own Slack link; platform admins and security anyone's
    (everyone else gets 404: a link's existence is not leaked)."""
    if not getattr(viewer, "is_authenticated", False):
        return False
    return viewer.pk == person.pk or is_platform_admin(viewer) or is_security(viewer)


def may_manage_slack_routes(viewer: Any) -> bool:
    return bool(getattr(viewer, "is_authenticated", False)) and (
        is_platform_admin(viewer) or is_security(viewer)
    )
