"""Who may read the audit trail: auditors, security and platform admins. Everyone else: 404."""

from __future__ import annotations

from accounts.models import PlatformRole
from accounts.selectors import user_has_role

AUDIT_READERS = (PlatformRole.AUDITOR, PlatformRole.SECURITY, PlatformRole.PLATFORM_ADMIN)


def may_read_audit(user) -> bool:
    return any(user_has_role(user=user, role=role) for role in AUDIT_READERS)


def may_export_audit(user) -> bool:
    return may_read_audit(user)
