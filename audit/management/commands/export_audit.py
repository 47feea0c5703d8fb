from datetime import UTC, datetime, time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from audit.exporting import FORMATS, manifest_path
from audit.services import audit_export_create
from portal.core.actors import CLI
from portal.core.errors import DomainError


def parse_moment(value: str | None, *, option: str) -> datetime | None:
    """An ISO date (midnight UTC) or date-time (naive means UTC)."""
    if not value:
        return None
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(f"{option}: {value!r} is not an ISO date or date-time")
        moment = datetime.combine(day, time.min)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, UTC)
    return moment


class Command(BaseCommand):
    help = (
        "Export audit events (since <= occurred_at < until) as CSV or JSON lines, "
        "with FILE.manifest.json holding its SHA-256 and both ends of the chain."
    )

    def add_arguments(self, parser):
        parser.add_argument("--format", required=True, choices=FORMATS)
        parser.add_argument("--output", required=True, help="file to write")
        parser.add_argument("--since", default=None, help="ISO date or date-time (inclusive)")
        parser.add_argument("--until", default=None, help="ISO date or date-time (exclusive)")

    def handle(self, *args, **options):
        since = parse_moment(options["since"], option="--since")
        until = parse_moment(options["until"], option="--until")
        try:
            _, manifest = audit_export_create(
                actor=CLI,
                fmt=options["format"],
                since=since,
                until=until,
                output=options["output"],
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"exported {manifest['count']} events to {options['output']} "
                f"(manifest {manifest_path(options['output'])}, sha256 {manifest['sha256'][:16]}…)"
            )
        )
