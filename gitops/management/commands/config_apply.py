"""``manage.py config_apply DIR --plan-hash HASH [--name REPO]``: apply a reviewed plan.

Refused (exit 1) when the tree is invalid or when the plan made now has another hash than the
one reviewed (the database or the files changed since). Every change is audited as
``gitops:<REPO>``.
"""

from __future__ import annotations

import os
import sys

from django.core.management.base import BaseCommand, CommandError

from gitops.services import config_apply
from gitops.tree import ConfigInvalid
from portal.core.actors import gitops_actor
from portal.core.errors import DomainError


class Command(BaseCommand):
    help = "Apply a configuration tree whose plan hash was reviewed (config_plan prints it)."

    def add_arguments(self, parser):
        parser.add_argument("dir")
        parser.add_argument("--plan-hash", required=True, help="the hash config_plan printed")
        parser.add_argument(
            "--name",
            default=os.environ.get("GITOPS_NAME", "repository"),
            help="the repository's name, recorded as the actor gitops:<name> (env GITOPS_NAME)",
        )

    def handle(self, *args, **options):
        try:
            actor = gitops_actor(options["name"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        try:
            plan = config_apply(actor=actor, root=options["dir"], plan_hash=options["plan_hash"])
        except ConfigInvalid as exc:
            for problem in exc.problems:
                self.stderr.write(f"{problem}")
            sys.exit(1)
        except DomainError as exc:
            raise CommandError(f"refused: {exc.message}") from exc
        counts = plan.counts()
        self.stdout.write(
            f"applied {plan.hash}: {counts['create']} created, {counts['update']} changed, "
            f"{counts['delete']} removed, {plan.unchanged} unchanged (as {actor.label})"
        )
