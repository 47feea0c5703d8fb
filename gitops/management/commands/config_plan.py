"""``manage.py config_plan DIR [--json]``: what applying DIR would change, and the plan hash.

Exit code 0: no change; 2: changes (printed as a diff); 1: invalid (file, line and reason).
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand

from gitops.services import config_plan, plan_as_json
from gitops.tree import ConfigInvalid


class Command(BaseCommand):
    help = "Plan a configuration tree: exit 0 = no change, 2 = changes, 1 = invalid."

    def add_arguments(self, parser):
        parser.add_argument("dir")
        parser.add_argument("--json", action="store_true", help="print the plan as JSON")

    def handle(self, *args, **options):
        try:
            plan = config_plan(root=options["dir"])
        except ConfigInvalid as exc:
            for problem in exc.problems:
                self.stderr.write(f"{problem}")
            self.stderr.write(f"invalid: {len(exc.problems)} problem(s)")
            sys.exit(1)
        self.stdout.write(plan_as_json(plan) if options["json"] else plan.render(), ending="\n")
        if not plan.is_empty:
            sys.exit(2)
