"""``manage.py import_usage_events FILE --source NAME``: import a CloudTrail-style event file."""

from __future__ import annotations

import os

from django.core.management.base import BaseCommand, CommandError

from portal.core.actors import CLI
from portal.core.errors import DomainError
from usage import services


class Command(BaseCommand):
    help = (
        'Import CloudTrail-style events ({"Records": [...]}, JSON lines or concatenated JSON '
        "objects, optionally gzipped) as last-use data for a usage source (created if new)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--source", required=True, help="usage source slug, e.g. aws-prod")

    def handle(self, *args, **opts):
        path = opts["file"]
        if not os.path.isfile(path):
            raise CommandError(f"no such file: {path}")
        with open(path, "rb") as fh:
            data = fh.read()
        try:
            record = services.usage_import_events(
                actor=CLI,
                source_slug=opts["source"],
                data=data,
                file_name=os.path.basename(path),
            )
        except DomainError as exc:
            raise CommandError(f"refused, nothing stored: {exc.message}") from None
        self.stdout.write(
            f"{record.file_name}: {record.events} events, {record.matched_events} matched, "
            f"{record.grants_used} grants used ({record.grants_moved} moved forward), "
            f"{record.not_held} uses of access not held, "
            f"{record.unknown_principals} events of unknown principals, "
            f"{record.unknown_actions} events of unmapped actions"
        )
        for kind in ("unknown_principals", "unknown_actions"):
            for name, count in (record.report.get(kind) or {}).items():
                self.stdout.write(f"  {kind.replace('_', ' ')[:-1]}: {name} ({count})")
