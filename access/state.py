"""Transition tables for access requests and grants (see portal.core.state.transition)."""

from .models import AccessRequest, Grant

R = AccessRequest.Status
REQUEST_TRANSITIONS = {
    (R.PENDING, "advance"): R.PENDING,  # a stage completed, the next one starts
    (R.PENDING, "approve"): R.APPROVED,  # the last stage completed (or auto-approval)
    (R.PENDING, "deny"): R.DENIED,
    (R.PENDING, "cancel"): R.CANCELLED,
    (R.PENDING, "expire"): R.EXPIRED,
}

G = Grant.Status
GRANT_TRANSITIONS = {
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
