"""Audit action names of the costs app (registered at import time, see audit.registry)."""

from audit.registry import register

SOURCE_CREATED = register("costs.source_created", "A billing source was created")
IMPORT_SUCCEEDED = register(
    "costs.import_succeeded", "A FOCUS import replaced the cost lines of its billing periods"
)
RULE_CREATED = register("costs.rule_created", "An attribution rule was created")
RULE_UPDATED = register("costs.rule_updated", "An attribution rule was changed")
REATTRIBUTION_REQUESTED = register(
    "costs.reattribution_requested", "Re-attribution of past periods was requested"
)
REATTRIBUTION_APPLIED = register(
    "costs.reattribution_applied", "Cost lines were re-attributed under the current rules"
)
