"""Navigation entries of the usage app (see portal.core.nav)."""

from __future__ import annotations

from typing import Any

from portal.core.nav import NavEntry, register

from .models import UnusedRemoval

#: the notices that wait on the holder: keep the access (opt out) or let it go
WAITING = (UnusedRemoval.Status.DETECTED, UnusedRemoval.Status.SCHEDULED)


def my_unused_notices(user: Any):
    """Open unused-access notices about the viewer's own grants (a holder always sees their
    own, see ``removals_for_viewer``; this reads them in one query, on every page)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return UnusedRemoval.objects.none()
    return UnusedRemoval.objects.filter(principal=user, status__in=WAITING).select_related(
        "service", "grant__entitlement"
    )


def notices_waiting(user: Any) -> int:
    return my_unused_notices(user).count()


register(
    NavEntry(
        group="Governance",
        label="Unused access",
        url_name="usage:list",
        count=notices_waiting,
        order=40,
        element_id="nav-unused",
    )
)
