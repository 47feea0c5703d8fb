"""``manage.py seed_demo [--if-empty]``: deterministic demo data, refused outside the demo.

Each step is ``module.function`` called as ``function(stdout=..., rng=...)`` with its own
``random.Random(SEED)``, so a step's data does not depend on what other steps drew.
Steps whose module does not exist yet are skipped with a note. Steps write through
the product's services, so the demo has a real audit trail.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import random
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

SEED = 20261125
DEMO_STEPS = [
    "accounts.demo.seed_people",
    "access.demo.seed_access",
    "access.sync.demo.seed_provisioning",
    "usage.demo.seed_unused",  # before costs: its unused paid seats follow P4's rule
    "costs.demo.seed_costs",
    "reviews.demo.seed_reviews",
    "patterns.demo.seed_patterns",
    "standards.demo.seed_standards",
    "recommend.demo.seed_recommendations",
]


def demo_exists() -> bool:
    from accounts.demo import DEMO_ACCOUNTS
    from accounts.models import User

    return User.objects.filter(email=DEMO_ACCOUNTS[0].email).exists()


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # the parent package is missing too
        return False


class Command(BaseCommand):
    help = "Load the deterministic demo data (people, teams, access, costs). Refused when DEMO_ALLOWED is false."

    def add_arguments(self, parser):
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="do nothing when the demo data is already there (used by `make run`)",
        )

    def handle(self, *args, **options):
        if not settings.DEMO_ALLOWED:
            raise CommandError(
                "seed_demo refuses to run: DEMO_ALLOWED is false (production settings). "
                "Demo data must never reach a real database; set DEMO_ALLOWED=true only "
                "on a throwaway one."
            )
        if options["if_empty"] and demo_exists():
            self.stdout.write("demo data already present; nothing to do (--if-empty)")
            return
        # Thousands of events are written; keep the console readable (the events are in the
        # database and verify_audit checks them).
        audit_logger = logging.getLogger("portal.audit")
        previous_level = audit_logger.level
        audit_logger.setLevel(logging.WARNING)
        try:
            self._run_steps()
        finally:
            audit_logger.setLevel(previous_level)
        self.stdout.write(self.style.SUCCESS("demo data ready"))

    def _run_steps(self) -> None:
        for step in DEMO_STEPS:
            started = time.monotonic()
            module_name, func_name = step.rsplit(".", 1)
            if not _module_exists(module_name):
                self.stdout.write(f"{step}: skipped ({module_name} does not exist yet)")
                continue
            func = getattr(importlib.import_module(module_name), func_name, None)
            if func is None:
                raise CommandError(f"{step}: {module_name} has no function {func_name}")
            self.stdout.write(f"{step}:")
            func(stdout=self.stdout, rng=random.Random(SEED))
            self.stdout.write(f"  ({time.monotonic() - started:.1f} s)")
