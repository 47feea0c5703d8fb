"""Navigation entries of the access app (see portal.core.nav)."""

from __future__ import annotations

from typing import Any

from portal.core.nav import NavEntry, register

from .models import CatalogChangeProposal
from .policies import may_change_controls
from .selectors import approval_inbox_count


def approvals_waiting(user: Any) -> int:
    return approval_inbox_count(viewer=user)


def control_changes_waiting(user: Any) -> int:
    return CatalogChangeProposal.objects.filter(status=CatalogChangeProposal.Status.PENDING).count()


register(
    NavEntry(group="Access", label="Catalog", url_name="access:catalog", order=20),
    NavEntry(group="Access", label="Request access", url_name="access:request-new", order=30),
    # every signed-in person may see /bundles/ (requestable bundles): no query for the link
    NavEntry(
        group="Access",
        label="Bundles",
        url_name="access:bundle-list",
        order=35,
        element_id="nav-bundles",
    ),
    NavEntry(group="Access", label="My requests", url_name="access:request-list", order=40),
    NavEntry(group="Access", label="My grants", url_name="access:grant-list", order=50),
    NavEntry(
        group="Access",
        label="Approvals",
        url_name="access:approvals",
        count=approvals_waiting,
        order=60,
        element_id="nav-approvals",
    ),
    NavEntry(group="Governance", label="Provisioning", url_name="access_sync:hub", order=60),
    NavEntry(
        group="Governance",
        label="Control changes",
        url_name="access:catalog-changes",
        visible=may_change_controls,
        count=control_changes_waiting,
        order=15,
    ),
)
