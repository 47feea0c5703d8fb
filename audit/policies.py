"""Who may read the audit trail: auditors, security and platform admins. Everyone else: 404.

The roles are named as the auth groups they are (``accounts.models.PlatformRole`` values), so
the audit app does not depend on ``accounts``; a test pins that the names still match.
"""

from __future__ import annotations

from typing import Any

from portal.core.roles import user_in_group

AUDIT_READERS = ("auditor", "security", "platform-admin")


def may_read_audit(user: Any) -> bool:
    return any(user_in_group(user, role) for role in AUDIT_READERS)


def may_export_audit(user: Any) -> bool:
    return may_read_audit(user)
