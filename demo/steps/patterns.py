"""Demo step ``patterns``: role mining over a few teams (finished runs) and their adopted standard bundles.

Each run is mined synchronously (a few people, well under a second each); the largest
proposal of each team, edited down to requestable low/medium-risk entitlements, is adopted
by the demo admin as the team's standard bundle — so the next directory import grants it to
joiners. Idempotent: skipped when any mining run or bundle exists.
"""

from __future__ import annotations

from access.models import RISK_ORDER, Entitlement, Risk
from accounts.models import Team, User
from patterns.models import MiningRun, StandardBundle
from patterns.services import bundle_adopt, mining_run_create, mining_run_execute

DEMO_TEAMS = ("payments", "search", "checkout", "analytics")
MAX_BUNDLES = 3


def seed_patterns(*, stdout, rng) -> None:
    if StandardBundle.objects.exists() or MiningRun.objects.exists():
        stdout.write("patterns: mining runs or bundles already exist; skipped\n")
        return
    admin = User.objects.filter(email="admin@tollgate.test").first()
    if admin is None:
        stdout.write("patterns: demo admin missing; skipped\n")
        return
    adopted = 0
    for team in Team.objects.filter(slug__in=DEMO_TEAMS).order_by("slug"):
        if adopted >= MAX_BUNDLES:
            break
        run = mining_run_create(actor=admin, team=team, time_limit=5)
        run = mining_run_execute(run_id=run.pk)  # no-op when the eager task already ran it
        run.refresh_from_db()
        if run.status != MiningRun.Status.DONE:
            stdout.write(f"patterns: run #{run.pk} of {team.slug}: {run.status} {run.error}\n")
            continue
        # the role covering most grants among those shared by at least three people
        shared = [p for p in run.proposals.all() if len(p.user_ids) >= 3]
        proposal = max(shared, key=lambda p: (p.cells, len(p.user_ids), -p.index), default=None)
        if proposal is None:
            continue
        keep = [
            e.pk
            for e in Entitlement.objects.filter(pk__in=proposal.entitlement_ids, requestable=True)
            if RISK_ORDER[e.risk] <= RISK_ORDER[Risk.MEDIUM]
        ]
        if not keep:
            continue
        version = bundle_adopt(
            actor=admin,
            team=team,
            entitlement_ids=keep,
            proposal=proposal,
            note=f"demo: adopted from run #{run.pk}, proposal {proposal.index} (low/medium risk only)",
        )
        adopted += 1
        stdout.write(
            f"patterns: run #{run.pk} of {team.slug}: {run.stats['roles']} roles; "
            f"adopted {version} ({len(keep)} entitlements)\n"
        )
    stdout.write(f"patterns: {adopted} standard bundles adopted\n")
