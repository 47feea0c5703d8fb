"""``manage.py config_export DIR``: write Tollgate's configuration as a YAML tree."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from gitops.services import config_export


class Command(BaseCommand):
    help = "Write the configuration (catalog, policies, pairs, standards, budgets, rules) to DIR."

    def add_arguments(self, parser):
        parser.add_argument("dir")

    def handle(self, *args, **options):
        written = config_export(root=options["dir"])
        self.stdout.write(f"{len(written)} file(s) written to {options['dir']}")
