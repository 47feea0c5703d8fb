"""Demo step: apply the default standards (standards/default_standards.yaml) as the security
admin and run a scan, so the demo opens with violations and a first compliance score."""

from __future__ import annotations

from pathlib import Path

from accounts.models import User

from .document import PolicyDocumentError
from .models import PolicyVersion
from .services import standards_apply, standards_scan

DEFAULT_FILE = Path(__file__).with_name("default_standards.yaml")


def seed_standards(*, stdout, rng) -> None:
    if PolicyVersion.objects.exists():
        stdout.write("standards: a version is already applied; skipped\n")
        return
    admin = User.objects.filter(email="admin@tollgate.test").first()
    actor = admin or "system:demo"
    try:
        version, _ = standards_apply(
            actor=actor, text=DEFAULT_FILE.read_text(encoding="utf-8"), check_base=False
        )
    except PolicyDocumentError as exc:  # the demo catalog lacks a team or entitlement
        stdout.write(f"standards: default document refused ({exc.message}); skipped\n")
        return
    scan = standards_scan()
    stdout.write(
        f"standards: version {version.number} applied; scan found {scan.violating} violation(s)\n"
    )
