"""Every write of the usage app (P4). Services own their transaction and audit each change.

Ingestion (``usage_import_events``, ``usage_collect_service``) turns evidence of use into
``Grant.last_used_at`` through ``access.services.grants_record_use`` and records per-source
freshness (``UsageCoverage``). The daily run (``unused_daily``) cancels removals of grants used
again, ends opt-outs that reached their bound, detects unused grants, schedules them (holder
and owners notified) and removes those whose notice period is over through
``access.services.grant_revoke`` (the outbox). Removed access can be restored.

:mod:`.mapping` holds sources, freshness, mapping rules and aliases; :mod:`.ingest` the event
import and connector polling; :mod:`.removals` the removal life cycle.
"""

from .ingest import services_supporting_last_used, usage_collect_service, usage_import_events
from .mapping import (
    BATCH,
    SYSTEM,
    alias_create,
    coverage_mark,
    rule_create,
    rule_delete,
    source_for_connector,
    source_for_events,
)
from .removals import (
    S,
    _notify,
    opt_outs_expire,
    removal_opt_out,
    removal_restore,
    removals_cancel_used_again,
    removals_group_by,
    removals_remove_due,
    unused_daily,
    unused_detect,
)

__all__ = [
    "BATCH",
    "SYSTEM",
    "S",
    "_notify",
    "alias_create",
    "coverage_mark",
    "opt_outs_expire",
    "removal_opt_out",
    "removal_restore",
    "removals_cancel_used_again",
    "removals_group_by",
    "removals_remove_due",
    "rule_create",
    "rule_delete",
    "services_supporting_last_used",
    "source_for_connector",
    "source_for_events",
    "unused_daily",
    "unused_detect",
    "usage_collect_service",
    "usage_import_events",
]
