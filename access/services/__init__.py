"""Every write in the access app, by aggregate. Each service owns its transaction and writes
the audit event; notifications and downstream effects run after commit.

* :mod:`.catalog` — services, entitlements, approval policies, toxic pairs.
* :mod:`.delegations` — an approver's stand-in.
* :mod:`.requests` — submit, approve, deny, cancel; the sweeper's remind, escalate, expire.
* :mod:`.grants` — every write of a grant: from a request, provisioning outcomes, one
  ``grant_revoke`` for every origin (``RevokeOrigin``), expiry, leavers, last use;
  :mod:`.grants_direct` — grants without a request (birthright, restore, break-glass).
* :mod:`.provisioning` — the outbox: sync jobs, workers, retries, manual tasks, the sweeper.
* :mod:`.reconciliation` — downstream holders compared with grants.
* :mod:`.lifecycle` — expiry sweeps and reminders, leaver hooks, movers, follow-ups.
* :mod:`.locks` — every row lock, in ``LOCK_ORDER`` (``portal.core.locks``).

``from access.services import X`` works for every public service.
"""

from ._common import notifications_are_muted, notifications_muted
from .bundles import (
    RuleSpec,
    assignment_rule_delete,
    assignment_rule_save,
    bundle_assignment_preview,
    bundle_assignments_apply,
    bundle_assignments_sweep,
    bundle_delete,
    bundle_holdings,
    bundle_policy,
    bundle_request_approve,
    bundle_request_deny,
    bundle_request_status,
    bundle_request_submit,
    bundle_save,
)
from .catalog import (
    ENTITLEMENT_FIELDS,
    SERVICE_FIELDS,
    catalog_change_apply,
    catalog_change_propose,
    catalog_change_reject,
    entitlement_create,
    entitlement_update,
    entitlement_update_or_propose,
    policy_chat_approval_set,
    policy_create,
    service_create,
    service_update,
    toxic_pair_create,
    weakened_controls,
)
from .catalog_config import (
    entitlement_remove,
    entitlement_set_prerequisites,
    entitlement_unretire,
    policy_delete,
    policy_update,
    service_remove,
    service_unretire,
    toxic_pair_delete,
    toxic_pair_update,
)
from .delegations import delegation_create, delegation_end
from .grants import (
    RevokeOrigin,
    grant_expire,
    grant_from_request,
    grant_revoke,
    grants_lock_for_leavers,
    grants_record_use,
    grants_revoke_for_leaver,
)
from .grants_direct import grant_birthright, grant_break_glass, grant_restore
from .lifecycle import (
    follow_up_answer,
    follow_ups_sweep,
    grant_remind_expiry,
    grants_expiry_sweep,
    leaver_hooks_register,
    mover_flag,
    movers_sweep,
)
from .provisioning import (
    job_create,
    job_create_safely,
    manual_task_answer,
    sync_job_retry,
    sync_job_run,
    sync_jobs_sweep,
)
from .reconciliation import reconcile_all, reconcile_plan, reconcile_service
from .request_timers import (
    access_request_escalate,
    access_request_expire,
    access_request_remind,
    pending_requests_sweep,
    requests_cancel_for_leaver,
    requests_lock_for_leavers,
)
from .requests import (
    access_request_approve,
    access_request_cancel,
    access_request_deny,
    access_request_pass_system_stages,
    access_request_submit,
    access_request_submit_many,
)

__all__ = [
    "ENTITLEMENT_FIELDS",
    "SERVICE_FIELDS",
    "RevokeOrigin",
    "assignment_rule_delete",
    "assignment_rule_save",
    "bundle_assignment_preview",
    "bundle_assignments_apply",
    "bundle_assignments_sweep",
    "bundle_delete",
    "bundle_holdings",
    "bundle_policy",
    "bundle_request_approve",
    "bundle_request_deny",
    "bundle_request_status",
    "bundle_request_submit",
    "bundle_save",
    "RuleSpec",
    "entitlement_remove",
    "entitlement_set_prerequisites",
    "entitlement_unretire",
    "policy_delete",
    "policy_update",
    "service_remove",
    "service_unretire",
    "toxic_pair_delete",
    "toxic_pair_update",
    "access_request_approve",
    "access_request_pass_system_stages",
    "access_request_cancel",
    "access_request_deny",
    "access_request_escalate",
    "access_request_expire",
    "access_request_remind",
    "access_request_submit",
    "access_request_submit_many",
    "catalog_change_apply",
    "catalog_change_propose",
    "catalog_change_reject",
    "delegation_create",
    "delegation_end",
    "entitlement_create",
    "entitlement_update",
    "entitlement_update_or_propose",
    "follow_up_answer",
    "follow_ups_sweep",
    "grant_birthright",
    "grant_break_glass",
    "grant_expire",
    "grant_from_request",
    "grant_remind_expiry",
    "grant_restore",
    "grant_revoke",
    "grants_expiry_sweep",
    "grants_lock_for_leavers",
    "grants_record_use",
    "grants_revoke_for_leaver",
    "job_create",
    "job_create_safely",
    "leaver_hooks_register",
    "manual_task_answer",
    "mover_flag",
    "movers_sweep",
    "notifications_are_muted",
    "notifications_muted",
    "pending_requests_sweep",
    "policy_chat_approval_set",
    "policy_create",
    "reconcile_all",
    "reconcile_plan",
    "reconcile_service",
    "requests_cancel_for_leaver",
    "requests_lock_for_leavers",
    "service_create",
    "service_update",
    "weakened_controls",
    "sync_job_retry",
    "sync_job_run",
    "sync_jobs_sweep",
    "toxic_pair_create",
]
