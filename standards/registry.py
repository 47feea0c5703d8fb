"""Audit action names of standards as policy (P6)."""

from audit.registry import register

VERSION_APPLIED = register(
    "standards.version_applied", "A new version of the standards document was applied"
)
SCAN_COMPLETED = register(
    "standards.scan_completed", "A standards scan opened, kept or resolved violations"
)
