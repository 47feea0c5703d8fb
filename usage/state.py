"""Transition table of an unused-access removal (see portal.core.state.transition).

detected ──schedule──▶ scheduled ──remove──▶ removed ──restore──▶ restored
   │                     │    │
   │                     │    └─opt_out──▶ opted_out ──end_opt_out──▶ opt_out_ended
   └─cancel──▶ cancelled ◀┘ (used again, grant ended another way)

``opted_out`` is bounded (at most TOLLGATE_UNUSED_OPT_OUT_MAX_DAYS); when it ends, the grant
is evaluated again by the next daily scan and may get a new removal record.
"""

from portal.core.state import Table

from .models import UnusedRemoval

S = UnusedRemoval.Status
REMOVAL_TRANSITIONS: Table = {
    (S.DETECTED, "schedule"): S.SCHEDULED,  # holder and owners notified, notice starts
    (S.DETECTED, "cancel"): S.CANCELLED,
    (S.DETECTED, "opt_out"): S.OPTED_OUT,
    (S.SCHEDULED, "cancel"): S.CANCELLED,  # used again, or the grant ended another way
    (S.SCHEDULED, "opt_out"): S.OPTED_OUT,  # holder, manager or owner keeps it (bounded)
    (S.SCHEDULED, "remove"): S.REMOVED,  # notice period over: revoked through the outbox
    (S.OPTED_OUT, "end_opt_out"): S.OPT_OUT_ENDED,  # bound reached: evaluated again
    (S.REMOVED, "restore"): S.RESTORED,  # a new grant re-creates the access
}
