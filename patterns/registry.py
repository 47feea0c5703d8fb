"""Audit action names of the access-patterns app (P1–P3)."""

from audit.registry import register

MINING_RUN_CREATED = register("patterns.mining_run_created", "A role-mining run was requested")
MINING_RUN_TRANSITIONS = {
    action: register(f"patterns.mining_run_{action}", f"Mining run transition: {action}")
    for action in ("start", "finish", "fail")
}
BUNDLE_ADOPTED = register(
    "patterns.bundle_adopted", "A team's standard bundle was adopted or changed (new version)"
)
BUNDLE_RETIRED = register("patterns.bundle_retired", "A team's standard bundle was retired")
BUNDLE_APPLIED = register(
    "patterns.bundle_applied", "A standard bundle was applied to a joiner (granted and skipped)"
)
