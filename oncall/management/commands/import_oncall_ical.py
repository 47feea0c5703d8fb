"""``manage.py import_oncall_ical SCHEDULE FILE [--actor EMAIL]``: a rota from iCalendar."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from oncall.models import Schedule
from oncall.services import rota_import_ical
from portal.core.errors import DomainError


class Command(BaseCommand):
    help = "Replace a schedule's current and future shifts with the events of an .ics file."

    def add_arguments(self, parser):
        parser.add_argument("schedule")
        parser.add_argument("file")
        parser.add_argument("--actor", required=True, help="e-mail of the owner or admin")

    def handle(self, *args, **options):
        schedule = Schedule.objects.filter(slug=options["schedule"]).first()
        actor = User.objects.filter(email__iexact=options["actor"], is_active=True).first()
        if schedule is None or actor is None:
            raise CommandError("no such schedule or person")
        try:
            counts = rota_import_ical(
                actor=actor,
                schedule=schedule,
                text=Path(options["file"]).read_text(encoding="utf-8"),
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            f"{schedule.slug}: {counts['created']} shift(s) added, {counts['kept']} kept, "
            f"{counts['cancelled']} cancelled"
        )
