"""Every write of access patterns: mining runs, standard bundles, birthright grants for
joiners. Grants go through ``access.services.grant_birthright`` (the access app's write path
and its provisioning outbox); this app never writes access rows itself."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from access.models import Entitlement, Grant
from accounts.models import Team
from audit.services import audit_record
from portal.core.actors import JOINER, ROLE_MINING, actor_may, refuse_string
from portal.core.errors import Conflict, DomainError, NotPermitted, ValidationError
from portal.core.queue import enqueue_on_commit
from portal.core.state import transition

from . import registry as actions
from .mining import MiningError, mine_roles
from .models import (
    BundleApplication,
    BundleVersion,
    MiningProposal,
    MiningRun,
    StandardBundle,
)
from .policies import may_manage_bundles, may_start_mining
from .state import MINING_RUN_TRANSITIONS
from .tasks import run_mining

logger = logging.getLogger(__name__)

SYSTEM_MINER = ROLE_MINING
MAX_TIME_LIMIT = 240  # below the Celery soft time limit (300 s)
PROGRESS_EVERY = 0.25  # seconds between progress writes


# --- Mining runs ------------------------------------------------------------------------
def mining_run_create(
    *, actor, team: Team | None = None, service=None, time_limit: int = 10
) -> MiningRun:
    """Queue a role-mining run over a team's or a service's active grants."""
    if not actor_may(actor, may_start_mining):
        raise NotPermitted("only platform admins and security start role mining")
    if (team is None) == (service is None):
        raise ValidationError("mine either a team or a service", field="scope")
    if (
        not isinstance(time_limit, int)
        or isinstance(time_limit, bool)
        or not 1 <= time_limit <= MAX_TIME_LIMIT
    ):
        raise ValidationError(
            f"the time limit is 1 to {MAX_TIME_LIMIT} seconds", field="time_limit"
        )
    with transaction.atomic():
        run = MiningRun.objects.create(
            scope=MiningRun.Scope.TEAM if team is not None else MiningRun.Scope.SERVICE,
            team=team,
            service=service,
            time_limit=time_limit,
            requested_by=actor,
            message="queued",
        )
        audit_record(
            actor=actor,
            action=actions.MINING_RUN_CREATED,
            target=run,
            after={"scope": run.scope_label, "time_limit": time_limit},
        )
        enqueue_on_commit(run_mining, run.pk)
    return run


def mining_assignments(run: MiningRun) -> list[tuple[str, str]]:
    """The (user id, entitlement id) pairs of the run's scope: active grants of active
    people — a team's members, or a service's holders."""
    grants = Grant.objects.filter(status=Grant.Status.ACTIVE, principal__is_active=True)
    if run.team_id is not None:
        grants = grants.filter(principal__team_id=run.team_id)
    else:
        grants = grants.filter(entitlement__service_id=run.service_id)
    return [
        (str(u), str(e))
        for u, e in grants.order_by("principal_id", "entitlement_id").values_list(
            "principal_id", "entitlement_id"
        )
    ]


def _progress_writer(run_id: int):
    last = [0.0]

    def write(fraction: float, message: str) -> None:
        now = time.monotonic()
        if now - last[0] < PROGRESS_EVERY and fraction < 1.0:
            return
        last[0] = now
        # 5% for loading the input, 90% for the search, 5% for storing the result
        value = min(max(0.05 + 0.9 * float(fraction), 0.0), 0.95)
        MiningRun.objects.filter(pk=run_id, status=MiningRun.Status.RUNNING).update(
            progress=value, message=message[:200], updated_at=timezone.now()
        )

    return write


def mining_run_execute(*, run_id: int) -> MiningRun:
    """Task body: start the run, mine, and store the proposals (an exact cover) — or fail."""
    with transaction.atomic():
        run = MiningRun.objects.select_for_update().get(pk=run_id)
        if run.status != MiningRun.Status.QUEUED:
            return run  # a redelivered message: the run already started
        transition(
            run,
            table=MINING_RUN_TRANSITIONS,
            action="start",
            actor=SYSTEM_MINER,
            audit_action=actions.MINING_RUN_TRANSITIONS["start"],
            extra_fields={"started_at": timezone.now(), "progress": 0.02, "message": "loading"},
        )
    pairs = mining_assignments(run)
    try:
        if not pairs:
            raise MiningError("nobody in this scope holds any active access")
        result = mine_roles(
            pairs, time_limit=run.time_limit, progress=_progress_writer(run.pk), seed=run.pk
        )
        if not result.exact:
            raise MiningError(
                "the result is not an exact cover: " + "; ".join(result.stats["problems"])
            )
    except MiningError as exc:
        return _run_fail(run_id, str(exc))
    except Exception as exc:  # an engine bug must not leave the run "running" forever
        logger.exception("mining run %s failed", run_id)
        return _run_fail(run_id, f"internal error: {exc.__class__.__name__}")
    roles = sorted(result.roles, key=lambda r: (-len(r.users) * len(r.permissions), r.users))
    with transaction.atomic():
        run = MiningRun.objects.select_for_update().get(pk=run_id)
        MiningProposal.objects.bulk_create(
            MiningProposal(
                run=run,
                index=i,
                user_ids=[int(u) for u in role.users],
                entitlement_ids=[int(e) for e in role.permissions],
                cells=len(role.users) * len(role.permissions),
            )
            for i, role in enumerate(roles, start=1)
        )
        stats = {
            "users": result.stats["users"],
            "entitlements": result.stats["permissions"],
            "assignments": result.stats["assignments"],
            "roles": len(roles),
            "lower_bound": result.lower_bound,
            "optimal": result.optimal,
            "exact": result.exact,
            "elapsed": round(result.elapsed, 3),
        }
        transition(
            run,
            table=MINING_RUN_TRANSITIONS,
            action="finish",
            actor=SYSTEM_MINER,
            audit_action=actions.MINING_RUN_TRANSITIONS["finish"],
            after_extra={"roles": len(roles), "lower_bound": result.lower_bound},
            extra_fields={
                "finished_at": timezone.now(),
                "progress": 1.0,
                "message": f"{len(roles)} roles (lower bound {result.lower_bound}); exact cover verified",
                "stats": stats,
            },
        )
    return run


def _run_fail(
    run_id: int, error: str, *, now=None, only_if_running: bool = False
) -> MiningRun | None:
    """Fail a run with ``error``; with ``only_if_running``, leave (and return None for) a run
    that finished or failed meanwhile (the sweeper races the worker it thinks is lost)."""
    with transaction.atomic():
        run = MiningRun.objects.select_for_update().get(pk=run_id)
        if only_if_running and run.status != MiningRun.Status.RUNNING:
            return None
        transition(
            run,
            table=MINING_RUN_TRANSITIONS,
            action="fail",
            actor=SYSTEM_MINER,
            audit_action=actions.MINING_RUN_TRANSITIONS["fail"],
            reason=error[:300],
            extra_fields={
                "finished_at": now or timezone.now(),
                "error": error,
                "message": "failed",
            },
        )
    return run


LOST_AFTER = timedelta(minutes=10)  # beyond a run's own time limit: its worker is gone
REQUEUE_AFTER = timedelta(minutes=5)  # queued this long: the message was lost (Redis down)


def mining_runs_sweep(*, now=None) -> dict[str, int]:
    """Beat task body: a run whose worker died stays "running" forever, and a run whose
    message was lost stays "queued"; fail the first (with the reason) and re-send the second
    (execution is idempotent: it starts only a run that is still queued)."""
    now = now or timezone.now()
    failed = requeued = 0
    lost = "the worker running it was lost (no result after its time limit); start a new run"
    for run in MiningRun.objects.filter(status=MiningRun.Status.RUNNING).only(
        "pk", "started_at", "time_limit"
    ):
        deadline = (run.started_at or now) + timedelta(seconds=run.time_limit) + LOST_AFTER
        if deadline < now and _run_fail(run.pk, lost, now=now, only_if_running=True):
            failed += 1
    stale = MiningRun.objects.filter(
        status=MiningRun.Status.QUEUED, created_at__lt=now - REQUEUE_AFTER
    ).values_list("pk", flat=True)
    for run_id in list(stale):
        run_mining.delay(run_id)
        requeued += 1
    return {"failed": failed, "requeued": requeued}


# --- Standard bundles ---------------------------------------------------------------------
def _entitlements(ids: Iterable) -> list[Entitlement]:
    try:
        wanted = {int(i) for i in ids}
    except (TypeError, ValueError):
        raise ValidationError("entitlements are named by id", field="entitlements") from None
    if not wanted:
        raise ValidationError("a bundle needs at least one entitlement", field="entitlements")
    found = list(Entitlement.objects.filter(pk__in=wanted).select_related("service"))
    unknown = wanted - {e.pk for e in found}
    if unknown:
        raise ValidationError(
            "unknown entitlement ids: " + ", ".join(str(i) for i in sorted(unknown)),
            field="entitlements",
        )
    return sorted(found, key=lambda e: (e.service.slug, e.slug))


def bundle_adopt(
    *,
    actor,
    team: Team,
    entitlement_ids: Iterable,
    proposal: MiningProposal | None = None,
    note: str = "",
    name: str = "",
) -> BundleVersion:
    """Adopt (or change) a team's standard bundle: writes its next version.

    From a mining proposal, the entitlements must be some of the proposal's ("edit it
    down"); without one (an edit of the bundle), any entitlements of the catalog.
    """
    if not actor_may(actor, may_manage_bundles):
        raise NotPermitted("only platform admins adopt or change standard bundles")
    if team is None:
        raise ValidationError("pick the team the bundle is for", field="team")
    entitlements = _entitlements(entitlement_ids)
    if proposal is not None:
        outside = [str(e) for e in entitlements if e.pk not in set(proposal.entitlement_ids)]
        if outside:
            raise ValidationError(
                "not part of the proposal (adopt a subset of it): " + ", ".join(outside),
                field="entitlements",
            )
        if proposal.run.status != MiningRun.Status.DONE:
            raise Conflict("the mining run has not finished")
    note = (note or "").strip()[:500]
    with transaction.atomic():
        bundle, created = StandardBundle.objects.select_for_update().get_or_create(
            team=team,
            defaults={"name": (name or "").strip()[:200] or f"{team.name} standard bundle"},
        )
        previous = bundle.versions.order_by("-number").first()
        before = (
            {
                "version": previous.number,
                "entitlements": sorted(str(e) for e in previous.entitlements.all()),
                "active": bundle.active,
            }
            if previous
            else None
        )
        if previous is not None and bundle.active:
            same = set(previous.entitlements.values_list("pk", flat=True))
            if same == {e.pk for e in entitlements}:
                raise Conflict(
                    f"version {previous.number} already holds exactly these entitlements"
                )
        version = BundleVersion.objects.create(
            bundle=bundle,
            number=(previous.number + 1) if previous else 1,
            source_proposal=proposal,
            note=note,
            created_by=actor,
        )
        version.entitlements.set(entitlements)
        changed = ["updated_at"]
        bundle.updated_at = timezone.now()
        if not bundle.active:
            bundle.active = True
            changed.append("active")
        if name and name.strip() and name.strip() != bundle.name:
            bundle.name = name.strip()[:200]
            changed.append("name")
        bundle.save(update_fields=changed)
        audit_record(
            actor=actor,
            action=actions.BUNDLE_ADOPTED,
            target=bundle,
            before=before,
            after={
                "team": team.slug,
                "version": version.number,
                "entitlements": [str(e) for e in entitlements],
                "proposal": proposal.pk if proposal else None,
                "run": proposal.run_id if proposal else None,
            },
            reason=note,
        )
    return version


def bundle_retire(*, actor, bundle_id: int, reason: str) -> StandardBundle:
    """Stop granting a bundle to joiners (its versions and grants stay as they are)."""
    if not actor_may(actor, may_manage_bundles):
        raise NotPermitted("only platform admins retire standard bundles")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("say why the bundle is retired", field="reason")
    with transaction.atomic():
        bundle = StandardBundle.objects.select_for_update().get(pk=bundle_id)
        if not bundle.active:
            raise Conflict("the bundle is already retired")
        bundle.active = False
        bundle.updated_at = timezone.now()
        bundle.save(update_fields=["active", "updated_at"])
        audit_record(
            actor=actor,
            action=actions.BUNDLE_RETIRED,
            target=bundle,
            before={"active": True},
            after={"active": False},
            reason=reason,
        )
    return bundle


# --- Joiners: birthright grants ---------------------------------------------------------
def _prerequisite_order(entitlements: list[Entitlement]) -> list[Entitlement]:
    """Prerequisites inside the bundle before what needs them (stable otherwise)."""
    inside = {e.pk: e for e in entitlements}
    needs = {
        e.pk: set(e.prerequisites.values_list("pk", flat=True)) & set(inside) for e in entitlements
    }
    ordered: list[Entitlement] = []
    placed: set[int] = set()
    while len(ordered) < len(entitlements):
        ready = [e for e in entitlements if e.pk not in placed and needs[e.pk] <= placed]
        if not ready:  # a cycle: the rest in their order (their prerequisites will be missing)
            ready = [e for e in entitlements if e.pk not in placed]
        for e in ready:
            ordered.append(e)
            placed.add(e.pk)
    return ordered


def bundle_apply(*, user, team: Team, actor) -> dict[str, int]:
    """Grant ``user`` the entitlements of ``team``'s standard bundle they lack.

    Idempotent: what they hold is left alone; what cannot be granted (not requestable,
    prerequisite missing, separation of duties) is recorded with why, once per version.
    Runs in the caller's transaction (the directory import's) when there is one.
    """
    refuse_string(actor)
    from access import workflow
    from access.services import grant_birthright

    bundle = StandardBundle.objects.filter(team=team, active=True).first()
    version = bundle.current if bundle is not None else None
    if version is None or not user.is_active:
        return {"granted": 0, "skipped": 0}
    counts = {"granted": 0, "skipped": 0}
    outcomes: dict[str, list[str]] = {"granted": [], "skipped": []}
    ref = version.ref
    with transaction.atomic():
        held = set(
            Grant.objects.filter(principal=user, status__in=Grant.HELD_STATUSES).values_list(
                "entitlement_id", flat=True
            )
        )
        entitlements = _prerequisite_order(
            list(version.entitlements.select_related("service").order_by("service__slug", "slug"))
        )
        for entitlement in entitlements:
            if entitlement.pk in held:
                continue
            grant = None
            if not entitlement.requestable:
                outcome, detail = BundleApplication.Outcome.NOT_REQUESTABLE, "not requestable"
            else:
                missing = [str(p) for p in entitlement.prerequisites.all() if p.pk not in held]
                conflicts = workflow.toxic_conflicts(principal=user, entitlement=entitlement)
                if missing:
                    outcome = BundleApplication.Outcome.PREREQUISITE
                    detail = "missing prerequisite access: " + ", ".join(missing)
                elif conflicts:
                    pair, other = conflicts[0]
                    outcome = BundleApplication.Outcome.SOD
                    detail = f"separation of duties: holds {other} ({pair.reason})"
                else:
                    try:
                        grant = grant_birthright(
                            actor=actor,
                            principal=user,
                            entitlement=entitlement,
                            bundle_ref=ref,
                            reason=f"joined team {team.slug}",
                        )
                    except DomainError as exc:
                        outcome, detail = BundleApplication.Outcome.REFUSED, exc.message
                    else:
                        outcome, detail = BundleApplication.Outcome.GRANTED, ""
                        held.add(entitlement.pk)
            BundleApplication.objects.update_or_create(
                version=version,
                user=user,
                entitlement=entitlement,
                defaults={"outcome": outcome, "detail": detail[:300], "grant": grant},
            )
            key = "granted" if grant is not None else "skipped"
            counts[key] += 1
            outcomes[key].append(str(entitlement) + (f" ({detail})" if detail else ""))
        if counts["granted"] or counts["skipped"]:
            audit_record(
                actor=actor,
                action=actions.BUNDLE_APPLIED,
                target=version.bundle,
                after={
                    "user": user.email,
                    "team": team.slug,
                    "version": version.number,
                    "granted": outcomes["granted"],
                    "skipped": outcomes["skipped"],
                },
            )
    return counts


def bundle_joiner_hook(*, user, team, actor) -> None:
    """accounts.services.JOINER_HOOKS entry: a joiner of a team gets its standard bundle."""
    bundle_apply(user=user, team=team, actor=actor if actor is not None else JOINER)


def register_joiner_hook() -> None:
    from accounts.services import JOINER_HOOKS

    if bundle_joiner_hook not in JOINER_HOOKS:
        JOINER_HOOKS.append(bundle_joiner_hook)
