"""Demo step ``standards``: apply Tollgate's default standards as the platform admin and run
a scan, so the demo opens with violations and a first compliance score.

The document is the product's shipped default (``standards/default_standards.yaml``, also
imported with ``manage.py standards_import``), not demo data, so it stays in ``standards``."""

from __future__ import annotations

from pathlib import Path

import standards
from accounts.models import User
from portal.core.actors import DEMO
from standards.document import PolicyDocumentError
from standards.models import PolicyVersion
from standards.services import standards_apply, standards_scan

DEFAULT_FILE = Path(standards.__file__).with_name("default_standards.yaml")


def seed_standards(*, stdout, rng) -> None:
    if PolicyVersion.objects.exists():
        stdout.write("standards: a version is already applied; skipped\n")
        return
    admin = User.objects.filter(email="admin@tollgate.test").first()
    actor = admin or DEMO
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
