"""Audit action names of the configuration repository (each change is audited by the
service that makes it; these record the apply as a whole)."""

from audit.registry import register

CONFIG_APPLIED = register(
    "gitops.applied", "A configuration plan from a repository was applied (its hash and counts)"
)
