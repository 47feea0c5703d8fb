"""Audit action names of cost analytics (registered at import time, see audit.registry)."""

from audit.registry import register

BUDGET_SET = register("costs.budget_set", "A team's monthly budget was set or changed")
BUDGET_DELETED = register("costs.budget_deleted", "A team's monthly budget row was removed")
BUDGET_ALERT = register(
    "costs.budget_alert", "A team's actual or forecast spend crossed a budget threshold"
)
ANOMALY_ACKNOWLEDGED = register("costs.anomaly_acknowledged", "A cost anomaly was acknowledged")
ANOMALY_DISMISSED = register(
    "costs.anomaly_dismissed", "A cost anomaly was dismissed as expected (its pattern is skipped)"
)
ANOMALY_SNOOZED = register("costs.anomaly_snoozed", "A cost anomaly was snoozed")
ANOMALY_WOKE = register("costs.anomaly_woke", "A snoozed cost anomaly was reopened")
ANOMALY_SUBSCRIBED = register(
    "costs.anomaly_subscribed", "Someone subscribed to cost anomaly alerts"
)
ANOMALY_UNSUBSCRIBED = register(
    "costs.anomaly_unsubscribed", "Someone ended a subscription to cost anomaly alerts"
)
METRIC_CREATED = register("costs.metric_created", "A team defined a business metric")
METRIC_VALUES_PUSHED = register(
    "costs.metric_values_pushed", "Daily values of a business metric were pushed"
)
SUGGESTION_ACCEPTED = register("costs.suggestion_accepted", "A cost suggestion was accepted")
SUGGESTION_RESOLVED = register("costs.suggestion_resolved", "A cost suggestion was resolved")
SUGGESTION_DISMISSED = register("costs.suggestion_dismissed", "A cost suggestion was dismissed")
SUGGESTION_REOPENED = register("costs.suggestion_reopened", "A dismissed suggestion was reopened")

BY_ACTION = {
    "accept": SUGGESTION_ACCEPTED,
    "resolve": SUGGESTION_RESOLVED,
    "dismiss": SUGGESTION_DISMISSED,
    "reopen": SUGGESTION_REOPENED,
}
