"""Moved to :mod:`access.services.lifecycle` and :mod:`access.services.grants` (re-exported
here for old imports)."""

from access.services.grants import (  # noqa: F401
    grant_expire,
    grants_lock_for_leavers,
    grants_revoke_for_leaver,
)
from access.services.grants_direct import grant_break_glass  # noqa: F401
from access.services.lifecycle import (  # noqa: F401
    follow_up_answer,
    follow_ups_sweep,
    grant_remind_expiry,
    grants_expiry_sweep,
    grants_tied_to_old_team,
    mover_flag,
    movers_sweep,
)
