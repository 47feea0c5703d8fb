"""Transition tables of the costs app (see ``portal.core.state.transition``)."""

from .analytics.models import Anomaly, Suggestion

S = Suggestion.Status
SUGGESTION_TRANSITIONS = {
    (S.OPEN, "accept"): S.ACCEPTED,
    (S.OPEN, "dismiss"): S.DISMISSED,
    (S.ACCEPTED, "resolve"): S.RESOLVED,
    (S.ACCEPTED, "dismiss"): S.DISMISSED,
    (S.DISMISSED, "reopen"): S.OPEN,
}

A = Anomaly.Status
ANOMALY_TRANSITIONS: dict[tuple[str, str], str] = {
    (A.OPEN, "acknowledge"): A.ACKNOWLEDGED,
    (A.OPEN, "dismiss"): A.DISMISSED,
    (A.OPEN, "snooze"): A.SNOOZED,
    (A.ACKNOWLEDGED, "dismiss"): A.DISMISSED,
    (A.SNOOZED, "acknowledge"): A.ACKNOWLEDGED,
    (A.SNOOZED, "dismiss"): A.DISMISSED,
    (A.SNOOZED, "wake"): A.OPEN,
}
