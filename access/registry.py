"""Audit action names of the access app."""

from audit.registry import register

SERVICE_CREATED = register("service.created", "A catalog service was created")
SERVICE_UPDATED = register("service.updated", "A catalog service was changed")
ENTITLEMENT_CREATED = register("entitlement.created", "An entitlement was created")
ENTITLEMENT_UPDATED = register("entitlement.updated", "An entitlement was changed")
CATALOG_CHANGE_PROPOSED = register(
    "catalog.change_proposed", "An owner proposed a change to an entitlement's controls"
)
CATALOG_CHANGE_APPLIED = register(
    "catalog.change_applied", "A proposed change to an entitlement's controls was applied"
)
CATALOG_CHANGE_REJECTED = register(
    "catalog.change_rejected", "A proposed change to an entitlement's controls was rejected"
)
POLICY_CREATED = register("policy.created", "An approval policy was created")
POLICY_UPDATED = register("policy.updated", "An approval policy was changed")
TOXIC_PAIR_CREATED = register("sod.pair_created", "A separation-of-duties pair was declared")
TOXIC_PAIR_UPDATED = register("sod.pair_updated", "A separation-of-duties pair was changed")
TOXIC_PAIR_DELETED = register("sod.pair_deleted", "A separation-of-duties pair was removed")
POLICY_DELETED = register("policy.deleted", "An approval policy was removed")
ENTITLEMENT_DELETED = register(
    "entitlement.deleted", "An entitlement nothing referred to was deleted"
)
ENTITLEMENT_RETIRED = register(
    "entitlement.retired", "An entitlement was retired (held grants revoked, history kept)"
)
SERVICE_DELETED = register("service.deleted", "A service nothing referred to was deleted")
BUNDLE_SAVED = register("access_bundle.saved", "A requestable bundle was created or changed")
BUNDLE_DELETED = register("access_bundle.deleted", "A requestable bundle was removed")
BUNDLE_RETIRED = register(
    "access_bundle.retired", "A requestable bundle was retired (not requestable, history kept)"
)
BUNDLE_REQUESTED = register("access_bundle.requested", "A bundle was requested as one item")
ASSIGNMENT_RULE_SAVED = register(
    "access_bundle.rule_saved", "An assignment rule of a bundle was created or changed"
)
ASSIGNMENT_RULE_DELETED = register(
    "access_bundle.rule_deleted", "An assignment rule of a bundle was removed"
)
SERVICE_RETIRED = register("service.retired", "A service was retired (history kept)")
DELEGATION_CREATED = register("delegation.created", "An approver delegated approvals")
DELEGATION_ENDED = register("delegation.ended", "A delegation was ended early")
REQUEST_SUBMITTED = register("request.submitted", "An access request was submitted")
REQUEST_APPROVAL_GIVEN = register("request.approval_given", "An approver approved a stage")
REQUEST_ADVANCED = register("request.advance", "A request moved to its next stage")
REQUEST_APPROVED = register("request.approve", "A request was approved")
REQUEST_DENIED = register("request.deny", "A request was denied")
REQUEST_CANCELLED = register("request.cancel", "A request was cancelled")
REQUEST_EXPIRED = register("request.expire", "A pending request expired")
REQUEST_REMINDED = register("request.reminded", "Approvers were reminded")
REQUEST_ESCALATED = register(
    "request.escalated", "A request was escalated to the approvers' managers"
)
GRANT_CREATED = register("grant.created", "A grant was created")
GRANT_TRANSITIONS = {
    action: register(f"grant.{action}", f"Grant transition: {action}")
    for action in (
        "activate",
        "fail",
        "retry",
        "revoke",
        "extend",
        "expire",
        "complete_revoke",
        "fail_revoke",
    )
}
GRANT_BREAK_GLASS = register("grant.break_glass", "An emergency break-glass grant was taken")
GRANT_BIRTHRIGHT = register(
    "grant.birthright", "A grant was created from a team's standard bundle (birthright)"
)
SYNC_JOB_CREATED = register("sync_job.created", "A provisioning job was written to the outbox")
SYNC_JOB_TRANSITIONS = {
    action: register(f"sync_job.{action}", f"Sync job transition: {action}")
    for action in (
        "start",
        "succeed",
        "defer",
        "requeue",
        "wait_manual",
        "fail",
        "complete",
        "retry",
        "cancel",
    )
}
MANUAL_TASK_ANSWERED = register("manual_task.answered", "A manual provisioning task was answered")
RECONCILIATION_RUN = register("reconciliation.run", "A reconciliation run recorded drift")
GRANT_EXPIRY_REMINDED = register(
    "grant.expiry_reminded", "A holder was reminded of an ending grant"
)
FOLLOW_UP_CREATED = register("follow_up.created", "A follow-up review item was opened")
FOLLOW_UP_ANSWERED = register("follow_up.answered", "A follow-up review item was answered")
