"""Audit action names of the usage app (P4)."""

from audit.registry import register

USAGE_IMPORTED = register("usage.imported", "Usage events were imported from a file")
USAGE_COLLECTED = register("usage.collected", "Last-use data was collected from a connector")
RULE_CREATED = register("usage.rule_created", "A usage mapping rule was created")
RULE_DELETED = register("usage.rule_deleted", "A usage mapping rule was deleted")
ALIAS_CREATED = register("usage.alias_created", "A usage principal alias was created")
REMOVAL_DETECTED = register("unused.detected", "A grant was found unused")
REMOVAL_TRANSITIONS = {
    action: register(f"unused.{action}", f"Unused-access removal transition: {action}")
    for action in ("schedule", "cancel", "opt_out", "end_opt_out", "remove", "restore")
}
