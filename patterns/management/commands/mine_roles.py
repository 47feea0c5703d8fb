"""``manage.py mine_roles --upa FILE [--format pairs|rmp] --out FILE.json [--time-limit S]``.

Runs the role-mining engine (patterns.mining) on a user-permission file and writes the roles as
``{"roles": [{"users": [...], "permissions": [...]}, ...], "stats": {...}}``.
"""

from __future__ import annotations

import os

from django.core.management.base import BaseCommand, CommandError

from patterns.mining import MiningError, UpaFormatError, mine_roles, read_upa, write_roles
from patterns.mining.io import FORMATS


class Command(BaseCommand):
    help = "Mine a minimum set of roles that covers a user-permission matrix exactly."

    def add_arguments(self, parser):
        parser.add_argument("--upa", required=True, help="user-permission assignment file")
        parser.add_argument("--format", choices=FORMATS, default="pairs")
        parser.add_argument("--out", required=True, help="where to write the roles (JSON)")
        parser.add_argument("--time-limit", type=float, default=60.0, help="seconds (default 60)")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, **opts):
        path = opts["upa"]
        if not os.path.isfile(path):
            raise CommandError(f"no such file: {path}")
        if opts["time_limit"] < 0:
            raise CommandError("--time-limit must be >= 0")
        try:
            pairs = read_upa(path, opts["format"])
        except UpaFormatError as exc:
            raise CommandError(str(exc)) from exc

        verbose = opts["verbosity"] >= 2

        def progress(fraction: float, message: str) -> None:
            if verbose:
                self.stderr.write(f"[{fraction:4.0%}] {message}")

        try:
            result = mine_roles(
                pairs, time_limit=opts["time_limit"], progress=progress, seed=opts["seed"]
            )
        except MiningError as exc:
            raise CommandError(str(exc)) from exc
        stats = result.stats
        self.stdout.write(
            f"input: {stats['users']} users, {stats['permissions']} permissions, "
            f"{stats['assignments']} assignments"
        )
        self.stdout.write(f"roles: {len(result.roles)}")
        self.stdout.write(
            f"lower bound: {result.lower_bound}" + (" (optimal)" if result.optimal else "")
        )
        self.stdout.write(f"time: {result.elapsed:.2f}s")
        if not result.exact:
            self.stdout.write("verified: FAILED")
            raise CommandError("the roles are not an exact cover: " + "; ".join(stats["problems"]))
        self.stdout.write("verified: exact cover")
        write_roles(opts["out"], result)
        self.stdout.write(f"written: {opts['out']}")
