"""The access app's items on the home page's to-do list (see portal.core.home)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.urls import reverse
from django.utils import timezone

from portal.core.home import HomeItem, HomeProvider, register

from .models import AccessRequest
from .selectors import approval_inbox, expiring_soon, my_requests

#: grants ending within this many days are listed with an Extend button
EXPIRING_DAYS = 14
LIMIT = 5


def _stage(req: AccessRequest) -> str:
    name = (req.stage or {}).get("name", "")
    return f"stage {req.current_stage + 1} of {len(req.stages)}" + (f": {name}" if name else "")


def _what(entitlement) -> str:
    return f"{entitlement.service.name} · {entitlement.name}"


def approvals(user: Any) -> list[HomeItem]:
    return [
        HomeItem(
            kind="Approval",
            title=f"{req.principal.name or req.principal.email}: {_what(req.entitlement)}",
            url=reverse("access:request-detail", args=[req.pk]),
            detail=f"request #{req.pk}, {_stage(req)}",
            badge="waiting on you",
            action_label="Decide",
            action_url=reverse("access:request-detail", args=[req.pk]),
        )
        for req in approval_inbox(viewer=user)[:LIMIT]
    ]


def expiring(user: Any) -> list[HomeItem]:
    now = timezone.now()
    rows = []
    for grant in expiring_soon(viewer=user, days=EXPIRING_DAYS)[:LIMIT]:
        days = max(0, (grant.ends_at - now) // timedelta(days=1)) if grant.ends_at else 0
        extend = (
            reverse("access:request-new") + "?" + urlencode({"entitlement": grant.entitlement_id})
        )
        rows.append(
            HomeItem(
                kind="Expiring",
                title=_what(grant.entitlement),
                url=reverse("access:grant-detail", args=[grant.pk]),
                detail=f"your access ends on {timezone.localtime(grant.ends_at):%Y-%m-%d}",
                badge="ends today"
                if days == 0
                else f"ends in {days} day{'s' if days != 1 else ''}",
                action_label="Extend",
                action_url=extend,
            )
        )
    return rows


def open_requests(user: Any) -> list[HomeItem]:
    qs = my_requests(viewer=user).filter(status=AccessRequest.Status.PENDING)
    return [
        HomeItem(
            kind="Request",
            title=f"#{req.pk} {_what(req.entitlement)}"
            + ("" if req.principal_id == user.pk else f" for {req.principal.email}"),
            url=reverse("access:request-detail", args=[req.pk]),
            detail=f"submitted {timezone.localtime(req.created_at):%Y-%m-%d}",
            badge=_stage(req),
        )
        for req in qs[:LIMIT]
    ]


register(
    HomeProvider(
        key="access.approvals",
        section="waiting",
        items=approvals,
        order=10,
        more=lambda user: (reverse("access:approvals"), "All approvals"),
    ),
    HomeProvider(
        key="access.expiring",
        section="waiting",
        items=expiring,
        order=40,
        more=lambda user: (reverse("access:grant-list"), "All your grants"),
    ),
    HomeProvider(
        key="access.requests",
        section="requests",
        items=open_requests,
        order=10,
        more=lambda user: (reverse("access:request-list"), "All your requests"),
    ),
)
