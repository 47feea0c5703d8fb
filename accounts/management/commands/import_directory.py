"""``manage.py import_directory FILE [--dry-run] [--full]``: apply an HR directory file.

``manage.py import_directory --ldap [--full] [--dry-run] [--confirm-leavers N]``: read people
from the LDAP directory source (``TOLLGATE_LDAP_DIRECTORY``) and apply them the same way.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from accounts import directory
from accounts.services import directory_import
from portal.core.actors import DIRECTORY_IMPORT


class Command(BaseCommand):
    help = (
        "Import people and teams from an HR directory file (CSV or JSON), or with --ldap from "
        "the LDAP directory source. Every row is checked first; on any error all errors are "
        "printed, nothing changes and the exit status is 1. A second run changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "file", nargs="?", help="CSV (header row) or JSON (array of objects) file"
        )
        parser.add_argument(
            "--ldap",
            action="store_true",
            help="read people from LDAP (TOLLGATE_LDAP_DIRECTORY) instead of a file",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="print what would change and write nothing"
        )
        parser.add_argument(
            "--full",
            action="store_true",
            help="the file (or LDAP) is the whole directory: active people missing from it "
            "become leavers (--ldap without --full: incremental, or full when one is due)",
        )
        parser.add_argument(
            "--confirm-leavers",
            type=int,
            default=None,
            metavar="N",
            help="with --ldap: apply a run held for too many leavers if it makes exactly N leave",
        )
        parser.add_argument(
            "--format", choices=["csv", "json"], default=None, help="default: from the file name"
        )

    def handle(self, *args, **options):
        if options["ldap"]:
            if options["file"]:
                raise CommandError("give a FILE or --ldap, not both", returncode=2)
            return self._ldap(options)
        if not options["file"]:
            raise CommandError("give a directory FILE, or --ldap", returncode=2)
        if options["confirm_leavers"] is not None:
            raise CommandError("--confirm-leavers goes with --ldap", returncode=2)
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
            self._errors(exc)
            raise CommandError(
                f"{len(exc.errors)} error(s) in {path}; nothing was changed", returncode=1
            ) from exc
        self._report(result, options, label=path.name)

    def _errors(self, exc, where=None) -> None:
        for error in exc.errors:
            place = where(error.row) if where else ""
            self.stderr.write(f"{error}" + (f" [{place}]" if place else ""))
        self.stderr.write(f"({directory.ROW_NUMBERING})")

    def _report(self, result, options, *, label: str) -> None:
        if options["dry_run"]:
            for line in result.diff_lines():
                self.stdout.write(line)
            self.stdout.write(f"dry run, nothing written: {result.summary()}")
        else:
            self.stdout.write(self.style.SUCCESS(f"{label}: {result.summary()}"))

    def _ldap(self, options):
        from accounts.sources import directory_ldap_sync
        from connectors.base import ConnectorError

        try:
            outcome = directory_ldap_sync(
                actor=DIRECTORY_IMPORT,
                full=True if options["full"] else None,
                dry_run=options["dry_run"],
                confirm_leavers=options["confirm_leavers"],
            )
        except ConnectorError as exc:
            raise CommandError(exc.message, returncode=2) from exc
        except directory.DirectoryImportError as exc:
            self._errors(exc, getattr(exc, "where", None))
            raise CommandError(
                f"{len(exc.errors)} error(s) in the LDAP directory; nothing was changed",
                returncode=1,
            ) from exc
        if outcome.held:
            for line in outcome.result.diff_lines():
                if line.startswith("- leaver"):
                    self.stdout.write(line)
            raise CommandError(outcome.summary(), returncode=3)
        if outcome.read.skipped:
            self.stdout.write(
                f"{len(outcome.read.skipped)} LDAP entries without an e-mail address skipped"
            )
        self._report(
            outcome.result, options, label="ldap " + ("full" if outcome.full else "incremental")
        )
