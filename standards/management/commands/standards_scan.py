"""``manage.py standards_scan``: evaluate every standard now (under the scan's advisory lock)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from portal.core.locks import advisory_lock
from standards.services import standards_scan


class Command(BaseCommand):
    help = "Run a standards scan now: upsert violations and snapshot compliance scores."

    def handle(self, *args, **options):
        with advisory_lock("standards.scan") as acquired:
            if not acquired:
                raise CommandError("another standards scan is running")
            scan = standards_scan()
        self.stdout.write(
            f"scan #{scan.pk}: {scan.standards} standard(s), {scan.violating} violating subject(s), "
            f"{scan.opened} opened, {scan.resolved} resolved"
        )
