"""The usage app's items on the home page's to-do list (see portal.core.home)."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from django.utils import timezone

from portal.core.home import HomeItem, HomeProvider, register

from .nav import my_unused_notices


def unused_notices(user: Any) -> list[HomeItem]:
    """The viewer's own grants that unused-access detection will remove unless kept."""
    rows = []
    for removal in my_unused_notices(user).order_by("remove_after", "pk")[:5]:
        when = (
            f"removed on {timezone.localtime(removal.remove_after):%Y-%m-%d} unless you keep it"
            if removal.remove_after
            else "not used lately"
        )
        url = reverse("usage:detail", args=[removal.pk])
        rows.append(
            HomeItem(
                kind="Unused",
                title=f"{removal.service.name} · {removal.grant.entitlement.name}",
                url=url,
                detail=when,
                badge=f"unused for {removal.window_days}+ days",
                action_label="Keep or let go",
                action_url=url,
            )
        )
    return rows


register(
    HomeProvider(
        key="usage.unused",
        section="waiting",
        items=unused_notices,
        order=30,
        more=lambda user: (reverse("usage:list"), "All unused access"),
    )
)
