"""``manage.py seed_demo [--if-empty] [--step NAME ...]``: deterministic demo data.

Refused when ``DEMO_ALLOWED`` is false; in production the ``demo`` app is not even installed,
so the command does not exist there. :data:`DEMO_STEPS` lists the steps in order, as
imported callables: a step that is renamed or removed breaks the import of this module, and
a list that is not a list of named callables is refused before any step runs. Each step is
called as ``function(stdout=..., rng=...)`` with its own ``random.Random(SEED)``, so a step's
data does not depend on what other steps drew. Steps write through the product's services,
so the demo has a real audit trail.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import NamedTuple

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.test.utils import override_settings

from demo.steps import (
    access,
    accounts,
    costs,
    ldap,
    patterns,
    provisioning,
    recommend,
    reviews,
    standards,
    usage,
)

SEED = 20261125


class Step(NamedTuple):
    name: str
    run: Callable[..., object]


DEMO_STEPS: list[Step] = [
    Step("people", accounts.seed_people),
    Step("access", access.seed_access),
    Step("provisioning", provisioning.seed_provisioning),
    Step("usage", usage.seed_unused),  # before costs: its unused paid seats follow P4's rule
    Step("costs", costs.seed_costs),  # and the cost analytics (demo.steps.cost_analytics)
    Step("reviews", reviews.seed_reviews),
    Step("patterns", patterns.seed_patterns),
    Step("standards", standards.seed_standards),
    Step("recommend", recommend.seed_recommendations),
    Step("ldap", ldap.seed_ldap),  # User Directory on the demo's slapd, when slapd is installed
]


def demo_exists() -> bool:
    from accounts.models import User

    return User.objects.filter(email=accounts.DEMO_ACCOUNTS[0].email).exists()


def check_steps(steps: list[Step]) -> None:
    """Refuse a misconfigured list before any step writes anything."""
    names: set[str] = set()
    for i, step in enumerate(steps, start=1):
        if not isinstance(step, Step) or not callable(step.run):
            raise CommandError(f"DEMO_STEPS[{i}] is {step!r}, not a Step(name, callable)")
        if step.name in names:
            raise CommandError(f"DEMO_STEPS names the step {step.name!r} twice")
        names.add(step.name)


def select_steps(steps: list[Step], wanted: list[str] | None) -> list[Step]:
    """The steps named in ``wanted`` (in the list's order), or all; an unknown name is refused."""
    if not wanted:
        return list(steps)
    known = [step.name for step in steps]
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise CommandError(
            f"unknown demo step(s): {', '.join(unknown)}; the steps are: {', '.join(known)}"
        )
    return [step for step in steps if step.name in wanted]


class Command(BaseCommand):
    help = "Load the deterministic demo data (people, teams, access, costs). Refused when DEMO_ALLOWED is false."

    def add_arguments(self, parser):
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="do nothing when the demo data is already there (used by `make run`)",
        )
        parser.add_argument(
            "--migrate",
            action="store_true",
            help="apply the migrations first (`make run`: one process start instead of two)",
        )
        parser.add_argument(
            "--step",
            action="append",
            metavar="NAME",
            help="run only this step (repeatable; they run in the list's order): "
            + ", ".join(str(getattr(step, "name", step)) for step in DEMO_STEPS),
        )

    def handle(self, *args, **options):
        if not settings.DEMO_ALLOWED:
            raise CommandError(
                "seed_demo refuses to run: DEMO_ALLOWED is false (production settings). "
                "Demo data must never reach a real database; set DEMO_ALLOWED=true only "
                "on a throwaway one."
            )
        check_steps(DEMO_STEPS)
        steps = select_steps(DEMO_STEPS, options["step"])
        if options["migrate"]:
            call_command("migrate", interactive=False, verbosity=0)
        if options["if_empty"] and demo_exists():
            self.stdout.write("demo data already present; nothing to do (--if-empty)")
            return
        # Thousands of events are written; keep the console readable (the events are in the
        # database and verify_audit checks them).
        audit_logger = logging.getLogger("portal.audit")
        previous_level = audit_logger.level
        audit_logger.setLevel(logging.WARNING)
        started, cpu = time.monotonic(), time.process_time()
        try:
            # Nor is every one of its ~100,000 statements kept in DEBUG's query log (on SQLite
            # that log even costs a second statement per query, to quote the parameters).
            with override_settings(DEBUG=False):
                for step in steps:
                    self._run(step)
        finally:
            audit_logger.setLevel(previous_level)
        self.stdout.write(
            self.style.SUCCESS(
                f"demo data ready ({time.monotonic() - started:.1f} s; "
                f"{time.process_time() - cpu:.1f} s of CPU)"
            )
        )

    def _run(self, step: Step) -> None:
        started, cpu = time.monotonic(), time.process_time()
        self.stdout.write(f"{step.name}:")
        step.run(stdout=self.stdout, rng=random.Random(SEED))
        self.stdout.write(
            f"  ({time.monotonic() - started:.1f} s; {time.process_time() - cpu:.1f} s of CPU)"
        )
