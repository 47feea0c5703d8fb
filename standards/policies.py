"""Who may do what with standards. HTML views and the management commands ask these."""

from __future__ import annotations

from access.policies import is_security, sees_all_access
from accounts.policies import is_platform_admin


def may_read_standards(user) -> bool:
    """Admins, security and auditors read the standards, their versions and the export."""
    return sees_all_access(user)


def may_edit_standards(user) -> bool:
    return is_platform_admin(user)


def may_run_scan(user) -> bool:
    return is_platform_admin(user) or is_security(user)


def sees_all_violations(user) -> bool:
    return sees_all_access(user)
