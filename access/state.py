"""Transition tables for access requests and grants (see portal.core.state.transition)."""

from .models import AccessRequest, Grant, SyncJob

R = AccessRequest.Status
REQUEST_TRANSITIONS: dict[tuple[str, str], str] = {
    (R.PENDING, "advance"): R.PENDING,  # a stage completed, the next one starts
    (R.PENDING, "approve"): R.APPROVED,  # the last stage completed (or auto-approval)
    (R.PENDING, "deny"): R.DENIED,
    (R.PENDING, "cancel"): R.CANCELLED,
    (R.PENDING, "expire"): R.EXPIRED,
}

G = Grant.Status
GRANT_TRANSITIONS: dict[tuple[str, str], str] = {
    (G.PENDING, "activate"): G.ACTIVE,  # provisioned downstream (or no connector)
    (G.PENDING, "fail"): G.FAILED,
    (G.FAILED, "retry"): G.PENDING,
    (G.PENDING, "revoke"): G.REVOKING,
    (G.FAILED, "revoke"): G.REVOKING,
    (G.ACTIVE, "extend"): G.ACTIVE,
    (G.ACTIVE, "revoke"): G.REVOKING,
    (G.ACTIVE, "expire"): G.REVOKING,
    (G.REVOKING, "complete_revoke"): G.REVOKED,
    (G.REVOKING, "fail_revoke"): G.REVOKE_FAILED,
    (G.REVOKE_FAILED, "retry"): G.REVOKING,
}

J = SyncJob.Status
# The sync job is the effect downstream; its table is separate from the grant's.
SYNC_JOB_TRANSITIONS: dict[tuple[str, str], str] = {
    (J.PENDING, "start"): J.RUNNING,  # a worker claimed it (attempts + 1)
    (J.RUNNING, "succeed"): J.DONE,  # the downstream system is in the desired state
    (J.RUNNING, "defer"): J.PENDING,  # transient failure: retry at next_attempt_at
    (J.RUNNING, "requeue"): J.PENDING,  # the worker vanished (lease expired): sweeper
    (J.RUNNING, "wait_manual"): J.WAITING_MANUAL,  # a person must carry it out
    (J.RUNNING, "fail"): J.FAILED,  # permanent failure, or the retry bound reached
    (J.WAITING_MANUAL, "complete"): J.DONE,  # the person answered "done"
    (J.WAITING_MANUAL, "fail"): J.FAILED,  # the person answered "cannot"
    (J.FAILED, "retry"): J.PENDING,  # the retry button
    (J.PENDING, "cancel"): J.CANCELLED,  # superseded (revoked before it ran)
    (J.WAITING_MANUAL, "cancel"): J.CANCELLED,
    (J.FAILED, "cancel"): J.CANCELLED,
}
