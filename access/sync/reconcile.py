"""Moved to :mod:`access.services.reconciliation` (re-exported here for old imports)."""

from access.services.reconciliation import (  # noqa: F401
    PAGE_SIZE,
    Plan,
    principal_for_login,
    reconcilable,
    reconcile_all,
    reconcile_plan,
    reconcile_service,
)
