"""HTML pages of the access app (A1–A5, request side).

Thin views: parse input, authorize through policies and scoped selectors, call one
service, render. Objects the viewer may not see answer 404; domain errors map to
403 (NotPermitted), 404 (NotFound), a message and a redirect, or 409 for HTMX (Conflict),
and form errors (ValidationError, on its ``field`` when it names one).

* :mod:`access.views.catalog` — services and entitlements.
* :mod:`access.views.requests` — new request, preview, lists, decisions, the inbox.
* :mod:`access.views.grants` — grants and delegations.
"""

from ._common import is_htmx_partial, paginate
from .bundles import (
    bundle_list,
    bundle_request_decide,
    bundle_request_detail,
    bundle_request_new,
    bundle_rules,
)
from .catalog import (
    catalog,
    catalog_change_decide,
    catalog_changes,
    entitlement_create,
    entitlement_edit,
    service_connector_health,
    service_create,
    service_detail,
    service_edit,
)
from .grants import delegation_end, delegation_list, grant_detail, grant_list, grant_revoke
from .requests import (
    STATUS_FILTERS,
    approvals,
    approvals_bulk,
    request_approve,
    request_cancel,
    request_deny,
    request_detail,
    request_list,
    request_new,
    request_picker,
    request_preview,
)

__all__ = [
    "STATUS_FILTERS",
    "bundle_list",
    "bundle_request_decide",
    "bundle_request_detail",
    "bundle_request_new",
    "bundle_rules",
    "approvals",
    "approvals_bulk",
    "catalog_change_decide",
    "catalog_changes",
    "catalog",
    "delegation_end",
    "delegation_list",
    "entitlement_create",
    "entitlement_edit",
    "grant_detail",
    "grant_list",
    "grant_revoke",
    "is_htmx_partial",
    "paginate",
    "request_approve",
    "request_cancel",
    "request_deny",
    "request_detail",
    "request_list",
    "request_new",
    "request_picker",
    "request_preview",
    "service_create",
    "service_connector_health",
    "service_detail",
    "service_edit",
]
