"""Platform roles are Django auth groups; this reads them without knowing the accounts app.

``accounts.models.PlatformRole`` names the groups; apps below ``accounts`` (``audit``) name the
groups they need as plain strings and ask :func:`user_in_group`, so they depend on Django's auth
groups, not on ``accounts``.
"""

from __future__ import annotations

from typing import Any


def user_in_group(user: Any, name: str) -> bool:
    """Whether ``user`` is an active signed-in member of the group ``name`` (superusers: yes).

    The group names are read once per user object and kept on it (``_tollgate_roles``).
    """
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.is_superuser:
        return True
    cache = getattr(user, "_tollgate_roles", None)
    if cache is None:
        cache = set(user.groups.values_list("name", flat=True))
        user._tollgate_roles = cache
    return name in cache
