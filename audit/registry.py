"""The registry of audit action names. An unregistered name is a programming error.

Later apps register their own actions with :func:`register` at import time
(in their ``apps.ready``), so the full list is visible in one place at run time.
"""

from __future__ import annotations

ACTIONS: dict[str, str] = {}


def register(name: str, description: str) -> str:
    if name in ACTIONS and ACTIONS[name] != description:
        raise ValueError(f"audit action {name!r} registered twice with different descriptions")
    ACTIONS[name] = description
    return name


USER_CREATED = register("user.created", "A person was added from the directory")
USER_UPDATED = register("user.updated", "A person's directory attributes changed")
USER_MOVED = register("user.moved", "A person moved to another team")
USER_LEFT = register("user.left", "A person left: deactivated, sessions ended")
USER_REJOINED = register("user.rejoined", "A former leaver became active again")
USER_ROLES_CHANGED = register("user.roles_changed", "Platform roles changed")
TEAM_CREATED = register("team.created", "A team was created")
TEAM_UPDATED = register("team.updated", "A team's name or parent changed")
MEMBERSHIP_CHANGED = register("team.membership_changed", "A team membership or role changed")
DIRECTORY_IMPORTED = register("directory.imported", "A directory import was applied")
AUTH_LOGIN = register("auth.login", "A person signed in")
AUTH_LOGIN_FAILED = register("auth.login_failed", "A sign-in attempt failed")
AUTH_LOGOUT = register("auth.logout", "A person signed out")
AUDIT_VERIFIED = register("audit.verified", "The audit chain was verified")
AUDIT_EXPORTED = register("audit.exported", "A range of the audit trail was exported")
