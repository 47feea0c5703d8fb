"""``manage.py reattribute [--period YYYY-MM ...]``: re-apply the current rules to past lines."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from costs import services
from costs.models import ReattributionRun
from portal.core.actors import CLI
from portal.core.errors import DomainError


class Command(BaseCommand):
    help = "Re-attribute cost lines of the given billing periods (default: every period)."

    def add_arguments(self, parser):
        parser.add_argument("--period", action="append", default=[], help="YYYY-MM (repeatable)")

    def handle(self, *args, **opts):
        try:
            run = services.reattribution_request(actor=CLI, periods=opts["period"])
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        run = services.reattribution_execute(run_id=run.pk)  # no-op if the task already ran it
        if run.status != ReattributionRun.Status.SUCCEEDED:
            raise CommandError(f"re-attribution #{run.pk} failed: {run.error}")
        self.stdout.write(f"re-attribution #{run.pk}: {run.lines_changed:,} lines changed")
