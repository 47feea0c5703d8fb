"""``manage.py import_opencost FILE --source NAME [--idle-rule]``: load an OpenCost
``/allocation`` response (JSON, daily windows) as Kubernetes cost lines."""

from __future__ import annotations

import os

from django.core.management.base import BaseCommand, CommandError

from costs.opencost import ensure_idle_rule, opencost_import
from portal.core.actors import CLI
from portal.core.errors import DomainError


class Command(BaseCommand):
    help = "Import OpenCost allocation JSON (by pod or namespace, daily windows) as cost lines."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--source", required=True, help="billing source, e.g. k8s-prod")
        parser.add_argument("--currency", default="USD")
        parser.add_argument(
            "--idle-rule",
            action="store_true",
            help="create the shared-cost rule that splits idle cost by usage, if missing",
        )

    def handle(self, *args, **options):
        path = options["file"]
        if not os.path.isfile(path):
            raise CommandError(f"no such file: {path}")
        with open(path, "rb") as fh:
            payload = fh.read()
        try:
            if options["idle_rule"]:
                ensure_idle_rule(actor=CLI)
            run = opencost_import(
                actor=CLI,
                source_name=options["source"],
                payload=payload,
                file_name=os.path.basename(path),
                currency=options["currency"],
            )
        except DomainError as exc:
            raise CommandError(exc.message) from None
        if run.status != "succeeded":
            for error in run.errors[:20]:
                self.stderr.write(f"{error['column']}: {error['reason']}")
            raise CommandError(f"import #{run.pk} refused: nothing changed")
        self.stdout.write(
            f"import #{run.pk}: {run.rows_read} allocations, {run.rows_loaded} cost lines, "
            f"billed {run.billed_total}, periods {', '.join(run.periods)}"
        )
