"""``manage.py standards_import FILE [--dry-run] [--actor EMAIL]``: apply a standards document."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from portal.core.actors import STANDARDS_IMPORT
from portal.core.errors import DomainError
from standards.document import PolicyDocumentError, parse
from standards.services import standards_apply, standards_diff


def print_diff(stdout, diff) -> None:
    for change in diff.added:
        stdout.write(
            f"  + {change.key}: {change.rule.title} ({change.new_violations} new violation(s))"
        )
    for change in diff.changed:
        stdout.write(
            f"  ~ {change.key}: {', '.join(change.fields)} changed "
            f"({change.new_violations} new, {change.resolved_violations} resolved)"
        )
    for change in diff.removed:
        stdout.write(f"  - {change.key} ({change.resolved_violations} violation(s) resolved)")
    stdout.write(
        f"  {len(diff.added)} added, {len(diff.changed)} changed, {len(diff.removed)} removed, "
        f"{diff.unchanged} unchanged; {diff.new_violations} new violation(s) would open"
    )


class Command(BaseCommand):
    help = "Import a standards YAML document: show the diff, and apply it unless --dry-run."

    def add_arguments(self, parser):
        parser.add_argument("file", help="the YAML document ('-' for standard input)")
        parser.add_argument("--dry-run", action="store_true", help="show the diff only")
        parser.add_argument(
            "--actor", default="", help="e-mail of the platform admin recorded as the author"
        )

    def handle(self, *args, **options):
        path = options["file"]
        try:
            text = (
                __import__("sys").stdin.read()
                if path == "-"
                else Path(path).read_text(encoding="utf-8")
            )
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {path}: {exc}") from exc
        actor = STANDARDS_IMPORT
        if options["actor"]:
            from accounts.models import User

            person = User.objects.filter(email=options["actor"].lower()).first()
            if person is None:
                raise CommandError(f"no user {options['actor']}")
            actor = person
        try:
            rules = parse(text)
            diff = standards_diff(rules=rules)
            self.stdout.write(f"{path}: {len(rules)} standard(s)")
            print_diff(self.stdout, diff)
            if options["dry_run"]:
                self.stdout.write("dry run: nothing applied")
                return
            version, _ = standards_apply(actor=actor, text=text, check_base=False)
        except PolicyDocumentError as exc:
            for problem in exc.problems:
                self.stderr.write(f"{path}: {problem}")
            raise CommandError(
                f"{path} refused ({len(exc.problems)} problem(s)); nothing changed"
            ) from exc
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        if version is None:
            self.stdout.write("no changes: nothing applied")
        else:
            self.stdout.write(self.style.SUCCESS(f"applied as version {version.number}"))
