"""Who may manage SCIM clients and held changes: platform admins (and an operator's command)."""

from __future__ import annotations

from accounts.policies import is_platform_admin
from portal.core.actors import CLI, actor_may


def may_manage_scim(actor) -> bool:
    return actor_may(actor, is_platform_admin, systems=(CLI,))
