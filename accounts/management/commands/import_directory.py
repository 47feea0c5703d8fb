"""``manage.py import_directory FILE [--dry-run] [--full]``: apply an HR directory file."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from accounts import directory
from accounts.services import directory_import
from portal.core.actors import DIRECTORY_IMPORT


class Command(BaseCommand):
    help = (
        "Import people and teams from an HR directory file (CSV or JSON). Every row is "
        "checked first; on any error all errors are printed, nothing changes and the exit "
        "status is 1. A second run of the same file changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="CSV (header row) or JSON (array of objects) file")
        parser.add_argument(
            "--dry-run", action="store_true", help="print what would change and write nothing"
        )
        parser.add_argument(
            "--full",
            action="store_true",
            help="the file is the whole directory: active people missing from it become leavers",
        )
        parser.add_argument(
            "--format", choices=["csv", "json"], default=None, help="default: from the file name"
        )

    def handle(self, *args, **options):
        path = Path(options["file"])
        try:
            inp = directory.read_path(path, fmt=options["format"])
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {path}: {exc}", returncode=2) from exc
        try:
            result = directory_import(
                rows=inp,
                full=options["full"],
                dry_run=options["dry_run"],
                actor=DIRECTORY_IMPORT,
                source=path.name,
            )
        except directory.DirectoryImportError as exc:
            for error in exc.errors:
                self.stderr.write(str(error))
            self.stderr.write(f"({directory.ROW_NUMBERING})")
            raise CommandError(
                f"{len(exc.errors)} error(s) in {path}; nothing was changed", returncode=1
            ) from exc
        if options["dry_run"]:
            for line in result.diff_lines():
                self.stdout.write(line)
            self.stdout.write(f"dry run, nothing written: {result.summary()}")
        else:
            self.stdout.write(self.style.SUCCESS(f"{path.name}: {result.summary()}"))
