"""Transition table of mining runs (see portal.core.state.transition)."""

from .models import MiningRun

S = MiningRun.Status
MINING_RUN_TRANSITIONS = {
    (S.QUEUED, "start"): S.RUNNING,
    (S.QUEUED, "fail"): S.FAILED,  # the input could not be read (e.g. nobody holds anything)
    (S.RUNNING, "finish"): S.DONE,
    (S.RUNNING, "fail"): S.FAILED,
}
