"""Reconciliation: compare a service's active grants with who holds what downstream.

* :func:`reconcile_plan` reads only: the grants (one streamed query) and the connector's
  holders (page by page) and returns the drift. Memory is one dict entry per active grant.
* :func:`reconcile_service` runs under a per-service advisory lock (a second run started
  meanwhile is skipped, never doubled). ``dry_run`` returns the plan and writes nothing;
  ``report`` writes one run row plus exactly one DriftItem per difference; ``enforce``
  additionally writes outbox jobs: re-grant what is missing, revoke unmanaged holders.
  Wrong levels are reported for a person to judge (a level change is not a plain grant
  or revoke).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from connectors.base import ConfigError, ConnectorError, EntitlementRef, Holder, PrincipalRef
from connectors.registry import get_connector
from portal.core.actors import RECONCILER, Actor, actor_label, actor_may
from portal.core.errors import NotPermitted, ValidationError
from portal.core.locks import advisory_lock

from .. import registry as actions
from ..models import DriftItem, Grant, ReconciliationRun, Service, SyncJob
from . import provisioning

logger = logging.getLogger(__name__)

PAGE_SIZE = 5000
IN_FLIGHT = (
    Grant.Status.PENDING,
    Grant.Status.FAILED,
    Grant.Status.REVOKING,
    Grant.Status.REVOKE_FAILED,
)


@dataclass
class Plan:
    service_id: int
    grants_checked: int = 0
    holders_seen: int = 0
    ignored: int = 0
    # (grant_id, login, slug)
    missing: list[tuple[int, str, str]] = field(default_factory=list)
    # (login, slug, level)
    unmanaged: list[tuple[str, str, str]] = field(default_factory=list)
    # (grant_id, login, slug, expected, actual)
    wrong_level: list[tuple[int, str, str, str, str]] = field(default_factory=list)

    @property
    def drift(self) -> int:
        return len(self.missing) + len(self.unmanaged) + len(self.wrong_level)

    def lines(self) -> list[str]:
        out = [
            f"missing downstream: {login} {slug} (grant #{g})" for g, login, slug in self.missing
        ]
        out += [
            f"unmanaged holder: {login} {slug} ({lvl or '-'})"
            for login, slug, lvl in self.unmanaged
        ]
        out += [
            f"wrong level: {login} {slug} expected {exp} got {act} (grant #{g})"
            for g, login, slug, exp, act in self.wrong_level
        ]
        return out


@dataclass(frozen=True)
class Progress:
    """How far a run is: grants found downstream of all active grants, holders read so far,
    and the drift found so far (unmanaged holders and wrong levels; missing grants are known
    only at the end)."""

    compared: int
    total: int
    holders: int
    unmanaged: int
    wrong_level: int


def reconcilable(service: Service) -> bool:
    if not service.connector:
        return False
    try:
        return get_connector(service.connector, service.connector_config).supports_list_holders
    except ConnectorError:
        return False


def reconcile_plan(
    service: Service,
    *,
    connector=None,
    page_size: int = PAGE_SIZE,
    progress: Callable[[Progress], None] | None = None,
) -> Plan:
    """The drift of one service, read-only. ``progress`` (if given) is told how far the
    comparison is after the grants are read and after every page of downstream holders."""
    connector = connector or get_connector(service.connector, service.connector_config)
    plan = Plan(service_id=service.pk)
    ents = list(service.entitlements.values_list("pk", "slug", "connector_config"))
    slug_of = {pk: slug for pk, slug, _ in ents}
    level_of = {slug: (cfg or {}).get("level", "") for _, slug, cfg in ents}
    alias = {slug: slug for slug in slug_of.values()}
    for slug, role in (service.connector_config.get("roles") or {}).items():
        if slug in alias and isinstance(role, str):
            alias[role] = slug
    for _, slug, cfg in ents:
        role = (cfg or {}).get("role")
        if isinstance(role, str):
            alias[role] = slug

    logins: dict[str, str] = {}
    expected: dict[tuple[str, str], int] = {}
    in_flight: set[tuple[str, str]] = set()
    rows = (
        Grant.objects.filter(entitlement__service=service)
        .exclude(status=Grant.Status.REVOKED)
        .values_list("pk", "principal__email", "entitlement_id", "status")
        .iterator(chunk_size=10_000)
    )
    for grant_id, email, ent_id, status in rows:
        login = logins.get(email)
        if login is None:
            try:
                login = connector.login_for(PrincipalRef(email=email))
            except ConnectorError:
                login = email
            logins[email] = login
        key = (login, slug_of[ent_id])
        if status == Grant.Status.ACTIVE:
            expected[key] = grant_id
            plan.grants_checked += 1
        else:
            in_flight.add(key)
    # Unmanaged holders whose revoke job is already open are in flight too.
    in_flight.update(
        SyncJob.objects.filter(
            service=service, grant__isnull=True, status__in=("pending", "running", "waiting_manual")
        ).values_list("principal_login", "entitlement_slug")
    )
    total = plan.grants_checked
    if progress is not None:
        progress(Progress(compared=0, total=total, holders=0, unmanaged=0, wrong_level=0))
    seen = 0
    for holder in _holders(service, connector, ents, page_size):
        seen += 1
        if progress is not None and seen % page_size == 0:
            progress(
                Progress(
                    compared=total - len(expected),
                    total=total,
                    holders=plan.holders_seen,
                    unmanaged=len(plan.unmanaged),
                    wrong_level=len(plan.wrong_level),
                )
            )
        slug = alias.get(holder.entitlement)
        if slug is None:
            plan.ignored += 1  # a downstream role Tollgate does not manage for this service
            continue
        plan.holders_seen += 1
        key = (holder.principal, slug)
        if key not in expected:
            if key not in in_flight:
                plan.unmanaged.append((holder.principal, slug, holder.level or ""))
            continue
        expected_id = expected.pop(key)
        want = level_of.get(slug) or "member"
        if holder.level and holder.level != want:
            plan.wrong_level.append((expected_id, holder.principal, slug, want, holder.level))
    plan.missing = sorted((gid, login, slug) for (login, slug), gid in expected.items())
    return plan


def _holders(service: Service, connector, ents, page_size: int) -> Iterator[Holder]:
    """Every downstream holder of the service: one listing, or (for connectors that list per
    entitlement, e.g. SCIM groups) the holders of each entitlement the connector can map."""
    if not getattr(connector, "lists_per_entitlement", False):
        yield from connector.iter_holders(None, page_size=page_size)
        return
    for _, slug, cfg in ents:
        ref = EntitlementRef(service.slug, slug, config=dict(cfg or {}))
        try:
            page = connector.list_holders(ref, page_size=page_size)
        except ConfigError:
            continue  # no downstream group for it: its grant jobs fail and say so
        while True:
            yield from page.holders
            if page.next_cursor is None:
                break
            page = connector.list_holders(ref, cursor=page.next_cursor, page_size=page_size)


def principal_for_login(connector, login: str) -> PrincipalRef | None:
    """A PrincipalRef the connector maps back to ``login`` (to revoke an unmanaged holder)."""
    candidates = [PrincipalRef(email=login, login=login)]
    prefix = getattr(connector, "login_prefix", "")
    if prefix and login.startswith(prefix):
        candidates.append(
            PrincipalRef(email=f"{login[len(prefix) :]}@unmanaged.invalid", login=login)
        )
    for candidate in candidates:
        try:
            if connector.login_for(candidate) == login:
                return candidate
        except ConnectorError:
            continue
    return None


def reconcile_service(
    *,
    service_id: int,
    mode: str = ReconciliationRun.Mode.REPORT,
    actor: Actor = RECONCILER,
    dry_run: bool = False,
    connector=None,
    page_size: int = PAGE_SIZE,
    run_id: int | None = None,
):
    """Run reconciliation of one service. Returns the Plan (dry run), the ReconciliationRun,
    or None when another run of the same service holds the lock (skipped). The reconciler
    runs it on schedule; a person who may edit the service runs it by hand, through
    :func:`reconcile_run_start` (``run_id``: the run the page already shows)."""
    service = _service_for(service_id=service_id, mode=mode, actor=actor)
    if dry_run:
        return reconcile_plan(service, connector=connector, page_size=page_size)
    with advisory_lock(f"access.reconcile.{service_id}") as acquired:
        run = None
        if run_id is not None:
            run = ReconciliationRun.objects.filter(
                pk=run_id, service=service, status=ReconciliationRun.Status.RUNNING
            ).first()
            if run is None:
                logger.warning("reconciliation run #%s is not a running run of %s", run_id, service)
                return None
        if not acquired:
            logger.info("reconciliation of %s already running; skipped", service.slug)
            if run is not None:
                _record_failure(
                    run,
                    actor=actor,
                    reason="another reconciliation of this service was running: this one did not start",
                )
            return None
        # The run is visible (running, with its counts moving) while it compares: the
        # service's page polls it. Its outcome is audited once, when it ends.
        run = run or ReconciliationRun.objects.create(
            service=service,
            mode=mode,
            status=ReconciliationRun.Status.RUNNING,
            actor_label=actor_label(actor)[:254],
        )
        try:
            connector = connector or get_connector(service.connector, service.connector_config)
            plan = reconcile_plan(
                service,
                connector=connector,
                page_size=page_size,
                progress=lambda p: _show_progress(run, p),
            )
        except ConnectorError as exc:
            _record_failure(run, actor=actor, reason=exc.message)
            return run
        except Exception as exc:
            _record_failure(run, actor=actor, reason=f"internal error ({type(exc).__name__})")
            raise
        return _record_run(run, plan, actor=actor, connector=connector)


def _service_for(*, service_id: int, mode: str, actor: Actor) -> Service:
    from ..sync.policies import may_reconcile

    if mode not in ReconciliationRun.Mode.values:
        raise ValidationError("mode is report or enforce", field="mode")
    service = Service.objects.get(pk=service_id)
    if not actor_may(actor, lambda user: may_reconcile(user, service), systems=(RECONCILER,)):
        raise NotPermitted("only the owner team and platform admins reconcile a service")
    return service


def reconcile_run_start(*, service_id: int, mode: str, actor: Actor) -> ReconciliationRun:
    """A run a person starts from the service's page: written at once as running (so the page
    shows its progress bar before a worker picks it up); the task then runs it by id."""
    service = _service_for(service_id=service_id, mode=mode, actor=actor)
    return ReconciliationRun.objects.create(
        service=service,
        mode=mode,
        status=ReconciliationRun.Status.RUNNING,
        actor_label=actor_label(actor)[:254],
    )


def reconcile_run_not_queued(*, run_id: int, actor: Actor, reason: str) -> None:
    """The task of a started run could not be queued: the run ends failed, with the reason."""
    run = ReconciliationRun.objects.filter(
        pk=run_id, status=ReconciliationRun.Status.RUNNING
    ).first()
    if run is not None:
        _record_failure(run, actor=actor, reason=reason)


def _show_progress(run: ReconciliationRun, progress: Progress) -> None:
    """Progress is bookkeeping of a running run, not a state change: no audit event. Written
    outside any transaction, so the page's poll sees it at once."""
    ReconciliationRun.objects.filter(pk=run.pk, status=ReconciliationRun.Status.RUNNING).update(
        grants_checked=progress.compared,
        holders_seen=progress.holders,
        unmanaged=progress.unmanaged,
        wrong_level=progress.wrong_level,
    )


def _record_failure(run: ReconciliationRun, *, actor, reason: str) -> None:
    with transaction.atomic():
        run.status = ReconciliationRun.Status.FAILED
        run.error = reason[:2000]
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "error", "finished_at"])
        audit_record(
            actor=actor,
            action=actions.RECONCILIATION_RUN,
            target=run,
            after={"service": run.service.slug, "mode": run.mode, "status": run.status},
            reason=reason,
        )


def _record_run(run: ReconciliationRun, plan: Plan, *, actor, connector) -> ReconciliationRun:
    service, mode = run.service, run.mode
    with transaction.atomic():
        run.status = ReconciliationRun.Status.DONE
        run.grants_checked = plan.grants_checked
        run.holders_seen = plan.holders_seen
        run.missing = len(plan.missing)
        run.unmanaged = len(plan.unmanaged)
        run.wrong_level = len(plan.wrong_level)
        run.finished_at = timezone.now()
        run.save()
        items = [
            DriftItem(
                run=run,
                service=service,
                kind=DriftItem.Kind.MISSING,
                grant_id=g,
                principal_login=login,
                entitlement_slug=slug,
            )
            for g, login, slug in plan.missing
        ]
        items += [
            DriftItem(
                run=run,
                service=service,
                kind=DriftItem.Kind.UNMANAGED,
                principal_login=login,
                entitlement_slug=slug,
                actual_level=level,
            )
            for login, slug, level in plan.unmanaged
        ]
        items += [
            DriftItem(
                run=run,
                service=service,
                kind=DriftItem.Kind.WRONG_LEVEL,
                grant_id=g,
                principal_login=login,
                entitlement_slug=slug,
                expected_level=exp,
                actual_level=act,
            )
            for g, login, slug, exp, act in plan.wrong_level
        ]
        items = DriftItem.objects.bulk_create(items, batch_size=2000)
        audit_record(
            actor=actor,
            action=actions.RECONCILIATION_RUN,
            target=run,
            after={
                "service": service.slug,
                "mode": mode,
                "grants_checked": plan.grants_checked,
                "holders_seen": plan.holders_seen,
                "missing": run.missing,
                "unmanaged": run.unmanaged,
                "wrong_level": run.wrong_level,
            },
        )
        if mode == ReconciliationRun.Mode.ENFORCE:
            jobs = _enforce(service, items, actor=actor, connector=connector, run=run)
            if jobs:
                run.jobs_created = jobs
                run.save(update_fields=["jobs_created"])
    return run


def _enforce(service, items, *, actor, connector, run) -> int:
    created = 0
    grants = {
        g.pk: g
        for g in Grant.objects.select_related("principal", "entitlement").filter(
            pk__in=[i.grant_id for i in items if i.kind == DriftItem.Kind.MISSING]
        )
    }
    for item in items:
        if item.kind == DriftItem.Kind.MISSING:
            grant = grants.get(item.grant_id)
            if grant is None or grant.status != Grant.Status.ACTIVE:
                continue
            job = provisioning.job_create_safely(
                actor=actor,
                service=service,
                operation=SyncJob.Operation.GRANT,
                grant=grant,
                origin=SyncJob.Origin.RECONCILE,
                drift_item=item,
                key_suffix=f"r{run.pk}-{item.pk}",
            )
        elif item.kind == DriftItem.Kind.UNMANAGED:
            principal = principal_for_login(connector, item.principal_login)
            if principal is None:
                continue  # no identity the connector maps back: a person must act
            job = provisioning.job_create_safely(
                actor=actor,
                service=service,
                operation=SyncJob.Operation.REVOKE,
                grant=None,
                origin=SyncJob.Origin.RECONCILE,
                principal_email=principal.email,
                principal_login=item.principal_login,
                entitlement_slug=item.entitlement_slug,
                drift_item=item,
                key_suffix=f"r{run.pk}-{item.pk}",
            )
        else:
            continue
        created += job is not None
    return created


def reconcile_all(*, mode: str = ReconciliationRun.Mode.REPORT) -> dict[str, int]:
    counts = {"runs": 0, "skipped": 0, "drift": 0}
    for service in Service.objects.exclude(connector="").order_by("pk"):
        if not reconcilable(service):
            continue
        run = reconcile_service(service_id=service.pk, mode=mode)
        if run is None:
            counts["skipped"] += 1
            continue
        counts["runs"] += 1
        counts["drift"] += run.drift
    return counts
