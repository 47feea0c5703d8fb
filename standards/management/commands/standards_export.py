"""``manage.py standards_export [--output FILE]``: write the applied standards as YAML."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand

from standards.document import dump
from standards.selectors import current_rules, current_version


class Command(BaseCommand):
    help = "Export the applied standards as a YAML document (re-importing it changes nothing)."

    def add_arguments(self, parser):
        parser.add_argument("--output", "-o", default="", help="file to write (default: stdout)")

    def handle(self, *args, **options):
        version = current_version()
        text = dump(current_rules(), version=version.number if version else None)
        if options["output"]:
            Path(options["output"]).write_text(text, encoding="utf-8")
            self.stdout.write(f"written to {options['output']}")
        else:
            self.stdout.write(text, ending="")
