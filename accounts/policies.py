"""Who may do what with people and teams. Views and the API both ask these."""

from __future__ import annotations

from .models import PlatformRole
from .selectors import user_has_role


def is_platform_admin(user) -> bool:
    return user_has_role(user=user, role=PlatformRole.PLATFORM_ADMIN)


def is_security(user) -> bool:
    return user_has_role(user=user, role=PlatformRole.SECURITY)


#: The roles whose holders change controls: their sessions need a second factor
#: (accounts.middleware) and their tokens expire sooner (tokens.services).
POWERFUL_ROLES = (PlatformRole.PLATFORM_ADMIN.value, PlatformRole.SECURITY.value)


def holds_powerful_role(user) -> bool:
    return is_platform_admin(user) or is_security(user)


def sees_everything(user) -> bool:
    """Admins, security, auditors and finance may see every team."""
    return any(
        user_has_role(user=user, role=r)
        for r in (
            PlatformRole.PLATFORM_ADMIN,
            PlatformRole.SECURITY,
            PlatformRole.AUDITOR,
            PlatformRole.FINANCE,
        )
    )


def may_import_directory(user) -> bool:
    return is_platform_admin(user)


def may_change_roles(user) -> bool:
    return is_platform_admin(user)
