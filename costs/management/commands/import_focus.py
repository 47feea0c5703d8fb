"""``manage.py import_focus FILE --source NAME [--period YYYY-MM]``: load one FOCUS export."""

from __future__ import annotations

import os
import sys
import time

from django.core.management.base import BaseCommand, CommandError

from costs import services
from costs.models import ImportRun
from portal.core.actors import CLI
from portal.core.errors import DomainError


class ProgressBar:
    """A one-line bar on a terminal; a line per ~10% otherwise (logs stay readable)."""

    def __init__(self, stream, enabled: bool):
        self.stream = stream
        self.enabled = enabled
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.last_decile = -1
        self.started = time.monotonic()

    def __call__(self, rows: int, done: int, total: int) -> None:
        if not self.enabled:
            return
        frac = min(1.0, done / total) if total else 1.0
        rate = rows / max(time.monotonic() - self.started, 1e-6)
        width = 30
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        line = f"[{bar}] {frac:6.1%}  {rows:,} rows  {rate:,.0f} rows/s"
        if self.tty:
            self.stream.write("\r" + line)
            self.stream.flush()
        elif int(frac * 10) > self.last_decile:
            self.last_decile = int(frac * 10)
            self.stream.write(line + "\n")

    def finish(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")


class Command(BaseCommand):
    help = "Import a FOCUS 1.0-1.2 export (CSV, gzipped CSV or Parquet) for a billing source."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--source", required=True, help="billing source name (created if new)")
        parser.add_argument("--period", help="YYYY-MM: refuse rows of any other billing period")
        parser.add_argument("--focus-version", help="1.0, 1.1 or 1.2 (default: from the header)")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **opts):
        path = opts["file"]
        if not os.path.isfile(path):
            raise CommandError(f"no such file: {path}")
        try:
            run = services.import_run_create(
                actor=CLI,
                source_name=opts["source"],
                file_name=path,
                file_path=os.path.abspath(path),
                period=opts.get("period"),
                focus_version=opts.get("focus_version"),
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        bar = ProgressBar(sys.stderr, enabled=not opts["no_progress"] and opts["verbosity"] > 0)
        run = services.import_run_execute(run_id=run.pk, actor=CLI, progress=bar)
        bar.finish()
        if run.status != ImportRun.Status.SUCCEEDED:
            for err in run.errors:
                self.stderr.write(f"row {err['row']}, column {err['column']}: {err['reason']}")
            shown = len(run.errors)
            raise CommandError(
                f"import #{run.pk} refused: {run.error_count} error(s)"
                + (f" (first {shown} shown)" if run.error_count > shown else "")
                + "; nothing was changed"
            )
        self.stdout.write(
            f"import #{run.pk}: {run.rows_loaded:,} rows, FOCUS {run.focus_version}, "
            f"periods {', '.join(p[:7] for p in run.periods)}, billed total "
            f"{run.billed_total.normalize():f} in {run.timings.get('total', 0):.2f}s"
        )
