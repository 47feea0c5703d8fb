"""``manage.py export_focus --month YYYY-MM [--team SLUG] --output FILE``: a month's
allocated costs as a FOCUS 1.2 file (CSV, or Parquet when FILE ends in .parquet)."""

from __future__ import annotations

import datetime as dt
import time

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Team
from costs.chargeback.allocation import Scope
from costs.chargeback.focus_export import export_to_file


class Command(BaseCommand):
    help = "Export a month's allocated costs (a team's, or the org's) as FOCUS 1.2 CSV or Parquet."

    def add_arguments(self, parser):
        parser.add_argument("--month", required=True, help="YYYY-MM (charge period)")
        parser.add_argument("--team", help="team slug (default: the whole org, unallocated too)")
        parser.add_argument("--output", required=True, help="file to write (.csv or .parquet)")
        parser.add_argument("--format", choices=("csv", "parquet"), help="default: by extension")

    def handle(self, *args, **options):
        try:
            month = dt.datetime.strptime(options["month"], "%Y-%m").date()
        except ValueError:
            raise CommandError(f"--month must be YYYY-MM (got {options['month']!r})") from None
        team_ids = None
        if options["team"]:
            team = Team.objects.filter(slug=options["team"]).first()
            if team is None:
                raise CommandError(f"no team with slug {options['team']!r}")
            team_ids = (team.pk,)
        output = options["output"]
        fmt = options["format"] or ("parquet" if output.endswith(".parquet") else "csv")
        started = time.monotonic()
        rows = export_to_file(Scope(month=month, team_ids=team_ids), output, fmt)
        self.stdout.write(
            f"{rows} allocated rows written to {output} ({fmt}) in {time.monotonic() - started:.1f} s"
        )
