"""Every write of the usage app (P4). Services own their transaction and audit each change.

Ingestion (``usage_import_events``, ``usage_collect_service``) turns evidence of use into
``Grant.last_used_at`` through ``access.services.grants_record_use`` and records per-source
freshness (``UsageCoverage``). The daily run (``unused_daily``) cancels removals of grants used
again, ends opt-outs that reached their bound, detects unused grants, schedules them (holder
and owners notified) and removes those whose notice period is over through
``access.services.grant_revoke`` (the outbox). Removed access can be restored.
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce, Greatest, Least
from django.utils import timezone

from access import services as access_services
from access.models import Entitlement, Grant, Service
from accounts.models import User
from audit.services import audit_record
from portal.core.errors import Conflict, NotPermitted, ValidationError
from portal.core.queue import enqueue_on_commit
from portal.core.state import transition

from . import cloudtrail, tasks
from . import registry as actions
from .models import (
    OPEN_REMOVAL_STATUSES,
    PrincipalAlias,
    UnusedRemoval,
    UsageCoverage,
    UsageImport,
    UsageMappingRule,
    UsageSource,
)
from .policies import may_manage_usage, may_opt_out, may_restore
from .rules import UnusedRule, fresh_service_ids, unused_grants
from .state import REMOVAL_TRANSITIONS

SYSTEM = "system:unused-access"
S = UnusedRemoval.Status
BATCH = 1000


def _notify(removal_ids: list[int], notice: str) -> None:
    if removal_ids:
        enqueue_on_commit(tasks.notify_removals, list(removal_ids), notice, kind="notify")


def _chunks(items: list, size: int = BATCH) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- Sources, freshness, mapping ----------------------------------------------------------
def source_for_connector(service: Service) -> UsageSource:
    source, _ = UsageSource.objects.get_or_create(
        slug=f"connector-{service.slug}"[:80],
        defaults={
            "name": f"{service.name} connector ({service.connector})",
            "kind": UsageSource.Kind.CONNECTOR,
            "service": service,
        },
    )
    return source


def source_for_events(slug: str) -> UsageSource:
    from django.utils.text import slugify

    clean = slugify(slug or "")[:80]
    if not clean or clean != slug:
        raise ValidationError(
            f"source name {slug!r} must be a slug (lower-case letters, digits, hyphens)",
            field="source",
        )
    source, _ = UsageSource.objects.get_or_create(
        slug=clean, defaults={"name": clean, "kind": UsageSource.Kind.EVENTS}
    )
    if source.kind != UsageSource.Kind.EVENTS:
        raise ValidationError(f"source {slug!r} is a connector source, not an event log")
    return source


def coverage_mark(
    *,
    source: UsageSource,
    service_ids: Iterable[int],
    covered_since: datetime,
    complete_until: datetime | None,
    attempt_at: datetime,
    error: str = "",
) -> None:
    """Record a collection attempt per service. On success (``complete_until`` set) the data
    is complete up to that time; ``covered_since`` only ever moves earlier and
    ``last_success_at`` only later (database-side, no check-then-act)."""
    for service_id in sorted(set(service_ids)):
        UsageCoverage.objects.get_or_create(
            source=source, service_id=service_id, defaults={"covered_since": covered_since}
        )
        changes: dict = {"last_attempt_at": attempt_at, "last_error": error[:500]}
        if complete_until is not None:
            changes["covered_since"] = Least(F("covered_since"), covered_since)
            changes["last_success_at"] = Greatest(
                Coalesce(F("last_success_at"), complete_until), complete_until
            )
        UsageCoverage.objects.filter(source=source, service_id=service_id).update(**changes)


def rule_create(
    *,
    actor: User,
    event_source: str,
    event_name: str,
    entitlement: Entitlement,
    source: UsageSource | None = None,
    note: str = "",
) -> UsageMappingRule:
    if not may_manage_usage(actor):
        raise NotPermitted("only a platform admin manages usage mapping rules")
    event_source, event_name = (event_source or "").strip(), (event_name or "").strip()
    for field, value in (("event_source", event_source), ("event_name", event_name)):
        if not value or len(value) > 200 or any(c.isspace() for c in value):
            raise ValidationError(
                f"{field} must be a non-empty glob without spaces (e.g. s3.amazonaws.com, Get*)",
                field=field,
            )
    with transaction.atomic():
        try:
            with transaction.atomic():
                rule = UsageMappingRule.objects.create(
                    source=source,
                    event_source=event_source,
                    event_name=event_name,
                    entitlement=entitlement,
                    note=(note or "")[:300],
                    created_by=actor,
                )
        except IntegrityError:
            raise Conflict(
                f"a rule {event_source}:{event_name} → {entitlement} already exists"
            ) from None
        audit_record(
            actor=actor,
            action=actions.RULE_CREATED,
            target=rule,
            after={
                "rule": f"{event_source}:{event_name}",
                "entitlement": str(entitlement),
                "source": source.slug if source else "",
            },
        )
    return rule


def rule_delete(*, actor: User, rule_id: int) -> None:
    if not may_manage_usage(actor):
        raise NotPermitted("only a platform admin manages usage mapping rules")
    with transaction.atomic():
        rule = (
            UsageMappingRule.objects.select_for_update()
            .select_related("entitlement__service")
            .filter(pk=rule_id)
            .first()
        )
        if rule is None:
            raise ValidationError(f"no rule #{rule_id}", field="rule")
        audit_record(
            actor=actor,
            action=actions.RULE_DELETED,
            target=rule,
            before={
                "rule": f"{rule.event_source}:{rule.event_name}",
                "entitlement": str(rule.entitlement),
            },
        )
        rule.delete()


def alias_create(*, actor: User, external_id: str, user: User) -> PrincipalAlias:
    if not may_manage_usage(actor):
        raise NotPermitted("only a platform admin manages usage aliases")
    external_id = (external_id or "").strip()
    if not external_id or len(external_id) > 500:
        raise ValidationError("give the identity as it appears in the log", field="external_id")
    with transaction.atomic():
        try:
            with transaction.atomic():
                alias = PrincipalAlias.objects.create(external_id=external_id, user=user)
        except IntegrityError:
            raise Conflict(f"{external_id} is already an alias") from None
        audit_record(
            actor=actor,
            action=actions.ALIAS_CREATED,
            target=alias,
            after={"external_id": external_id, "user": user.email},
        )
    return alias


# --- Event import ---------------------------------------------------------------------------
class _Matcher:
    """Event → entitlement ids by the mapping rules; identity → user id. Cached per run."""

    def __init__(self, source: UsageSource):
        self.rules = list(
            UsageMappingRule.objects.filter(Q(source=source) | Q(source__isnull=True)).values_list(
                "event_source", "event_name", "entitlement_id", "entitlement__service_id"
            )
        )
        self.service_ids = {row[3] for row in self.rules}
        self._actions: dict[tuple[str, str], tuple[int, ...]] = {}
        self._people: dict[tuple[str, ...], int | None] = {}

    def entitlements(self, event_source: str, event_name: str) -> tuple[int, ...]:
        key = (event_source.lower(), event_name.lower())
        if key not in self._actions:
            self._actions[key] = tuple(
                sorted(
                    {
                        ent
                        for src, name, ent, _ in self.rules
                        if fnmatch.fnmatchcase(key[0], src.lower())
                        and fnmatch.fnmatchcase(key[1], name.lower())
                    }
                )
            )
        return self._actions[key]

    def person(self, identities: tuple[str, ...]) -> int | None:
        if identities not in self._people:
            self._people[identities] = self._resolve(identities)
        return self._people[identities]

    @staticmethod
    def _resolve(identities: tuple[str, ...]) -> int | None:
        if not identities:
            return None
        aliases = dict(
            PrincipalAlias.objects.filter(external_id__in=identities).values_list(
                "external_id", "user_id"
            )
        )
        for name in identities:
            if name in aliases:
                return aliases[name]
        for name in identities:
            if "@" in name and "/" not in name and ":" not in name:
                found = User.objects.filter(email__iexact=name).values_list("pk", flat=True).first()
                if found is not None:
                    return found
        return None


def usage_import_events(
    *, actor, source_slug: str, data: bytes, file_name: str, now: datetime | None = None
) -> UsageImport:
    """Import one CloudTrail-style file. A malformed file raises ValidationError naming the
    line/offset and reason, and nothing is stored. Unknown principals and actions are counted
    and reported (``UsageImport.report``), not fatal."""
    now = now or timezone.now()
    try:
        events = cloudtrail.parse(data)
    except cloudtrail.MalformedFile as exc:
        raise ValidationError(f"{file_name}: {exc}", field="file") from None
    with transaction.atomic():
        source = source_for_events(source_slug)
    matcher = _Matcher(source)
    latest: dict[tuple[int, int], datetime] = {}
    unknown_principals: Counter[str] = Counter()
    unknown_actions: Counter[str] = Counter()
    matched = 0
    for event in events:
        ent_ids = matcher.entitlements(event.event_source, event.event_name)
        if not ent_ids:
            unknown_actions[event.action] += 1
            continue
        user_id = matcher.person(event.identities)
        if user_id is None:
            unknown_principals[event.principal_label] += 1
            continue
        matched += 1
        when = min(event.event_time, now)
        for ent_id in ent_ids:
            key = (user_id, ent_id)
            if key not in latest or latest[key] < when:
                latest[key] = when
    uses: dict[int, datetime] = {}
    held: set[tuple[int, int]] = set()
    pairs = sorted(latest)
    for chunk in _chunks(pairs):
        user_ids = {u for u, _ in chunk}
        ent_ids = {e for _, e in chunk}
        for pk, user_id, ent_id in Grant.objects.filter(
            status=Grant.Status.ACTIVE, principal_id__in=user_ids, entitlement_id__in=ent_ids
        ).values_list("pk", "principal_id", "entitlement_id"):
            if (user_id, ent_id) in latest:
                uses[pk] = latest[(user_id, ent_id)]
                held.add((user_id, ent_id))
    first = min((e.event_time for e in events), default=None)
    last = max((e.event_time for e in events), default=None)
    with transaction.atomic():  # last use, the import record, freshness and audit: all or none
        moved = access_services.grants_record_use(uses=uses, source=source.slug)
        record = UsageImport.objects.create(
            source=source,
            file_name=file_name[:500],
            sha256=hashlib.sha256(data).hexdigest(),
            events=len(events),
            matched_events=matched,
            grants_used=len(uses),
            grants_moved=moved,
            unknown_principals=sum(unknown_principals.values()),
            unknown_actions=sum(unknown_actions.values()),
            not_held=len(latest) - len(held),
            report={
                "unknown_principals": dict(unknown_principals.most_common(20)),
                "unknown_actions": dict(unknown_actions.most_common(20)),
            },
            first_event_at=first,
            last_event_at=last,
            imported_at=now,
            imported_by=actor if isinstance(actor, str) else getattr(actor, "email", ""),
        )
        if first is not None and matcher.service_ids:
            coverage_mark(
                source=source,
                service_ids=matcher.service_ids,
                covered_since=first,
                complete_until=min(last, now),
                attempt_at=now,
            )
        audit_record(
            actor=actor,
            action=actions.USAGE_IMPORTED,
            target=record,
            after={
                "source": source.slug,
                "file": record.file_name,
                "events": record.events,
                "grants_moved": moved,
                "unknown_principals": record.unknown_principals,
                "unknown_actions": record.unknown_actions,
            },
        )
    removals_cancel_used_again(now=now)
    return record


# --- Connector polling ----------------------------------------------------------------------
def usage_collect_service(*, service_id: int, now: datetime | None = None) -> dict:
    """Ask the service's connector when each active grant was last used (outside any
    transaction), move ``last_used_at`` forward, and mark the source fresh on success."""
    from connectors.base import ConnectorError, EntitlementRef, PrincipalRef
    from connectors.registry import get_connector

    service = Service.objects.filter(pk=service_id).first()
    if service is None or not service.connector:
        return {"grants": 0, "seen": 0, "moved": 0, "error": "no connector"}
    now = now or timezone.now()
    try:
        connector = get_connector(service.connector, service.connector_config)
    except ConnectorError as exc:
        return {"grants": 0, "seen": 0, "moved": 0, "error": exc.message}
    if not connector.supports_last_used:
        return {"grants": 0, "seen": 0, "moved": 0, "error": "connector does not report last use"}
    with transaction.atomic():
        source = source_for_connector(service)
    grants = list(
        Grant.objects.filter(status=Grant.Status.ACTIVE, entitlement__service=service)
        .select_related("principal", "entitlement")
        .order_by("pk")
    )
    uses: dict[int, datetime] = {}
    error = ""
    for grant in grants:
        principal = PrincipalRef(email=grant.principal.email)
        entitlement = EntitlementRef(
            service.slug, grant.entitlement.slug, config=dict(grant.entitlement.connector_config)
        )
        try:
            seen = connector.last_used(principal, entitlement)
        except ConnectorError as exc:
            error = exc.message
            break
        if seen is not None:
            uses[grant.pk] = seen
    moved = access_services.grants_record_use(uses=uses, source=source.slug)
    with transaction.atomic():
        coverage_mark(
            source=source,
            service_ids=[service.pk],
            covered_since=now,
            complete_until=None if error else now,
            attempt_at=now,
            error=error,
        )
        audit_record(
            actor=SYSTEM,
            action=actions.USAGE_COLLECTED,
            target=service,
            after={"source": source.slug, "grants": len(grants), "seen": len(uses), "moved": moved},
            reason=error,
        )
    if not error:
        removals_cancel_used_again(now=now)
    return {"grants": len(grants), "seen": len(uses), "moved": moved, "error": error}


def services_supporting_last_used() -> list[int]:
    from connectors.base import ConnectorError
    from connectors.registry import connector_class

    out = []
    for pk, name in Service.objects.exclude(connector="").values_list("pk", "connector"):
        try:
            if connector_class(name).supports_last_used:
                out.append(pk)
        except ConnectorError:
            continue
    return out


# --- The removal life cycle -----------------------------------------------------------------
def _move(removal: UnusedRemoval, action: str, *, actor, reason: str = "", **fields) -> None:
    fields["updated_at"] = timezone.now()
    transition(
        removal,
        table=REMOVAL_TRANSITIONS,
        action=action,
        actor=actor,
        audit_action=actions.REMOVAL_TRANSITIONS[action],
        reason=reason,
        extra_fields=fields,
        after_extra={k: v for k, v in fields.items() if k != "updated_at" and not hasattr(v, "pk")},
    )


def removals_cancel_used_again(*, now: datetime | None = None) -> int:
    """Cancel detected/scheduled removals whose grant was used within the window, or is no
    longer active (revoked or expired another way)."""
    now = now or timezone.now()
    cutoff = UnusedRule.from_settings().cutoff(now)
    ids = list(
        UnusedRemoval.objects.filter(status__in=(S.DETECTED, S.SCHEDULED))
        .filter(Q(grant__last_used_at__gt=cutoff) | ~Q(grant__status=Grant.Status.ACTIVE))
        .values_list("pk", flat=True)
    )
    cancelled = 0
    for pk in ids:
        with transaction.atomic():
            removal = (
                UnusedRemoval.objects.select_for_update(of=("self",))
                .select_related("grant")
                .get(pk=pk)
            )
            if removal.status not in (S.DETECTED, S.SCHEDULED):
                continue
            grant = removal.grant
            if grant.status != Grant.Status.ACTIVE:
                why = f"grant is {grant.status}"
            elif grant.last_used_at and grant.last_used_at > cutoff:
                why = f"used again on {grant.last_used_at:%Y-%m-%d %H:%M}"
            else:
                continue
            _move(removal, "cancel", actor=SYSTEM, reason=why, closed_reason=why[:300])
            cancelled += 1
    return cancelled


def opt_outs_expire(*, now: datetime | None = None) -> int:
    """Opt-outs past their bound end; the next detection evaluates the grant again."""
    now = now or timezone.now()
    ids = list(
        UnusedRemoval.objects.filter(status=S.OPTED_OUT, opt_out_until__lte=now).values_list(
            "pk", flat=True
        )
    )
    ended = 0
    for pk in ids:
        with transaction.atomic():
            removal = UnusedRemoval.objects.select_for_update().get(pk=pk)
            if removal.status != S.OPTED_OUT or removal.opt_out_until > now:
                continue
            _move(
                removal,
                "end_opt_out",
                actor=SYSTEM,
                reason="opt-out reached its end: the grant is evaluated again",
                closed_reason="opt-out ended",
            )
            ended += 1
    return ended


def unused_detect(*, now: datetime | None = None, rule: UnusedRule | None = None) -> int:
    """Create a removal (detected, then scheduled with the notice period) for every unused
    grant without an open removal. Holders and owners are notified after commit."""
    now = now or timezone.now()
    rule = rule or UnusedRule.from_settings()
    notice = timedelta(days=settings.TOLLGATE_UNUSED_NOTICE_DAYS)
    open_grants = UnusedRemoval.objects.filter(status__in=OPEN_REMOVAL_STATUSES).values("grant_id")
    candidates = list(
        unused_grants(now=now, rule=rule)
        .exclude(pk__in=open_grants)
        .exclude(ends_at__lte=now + notice)  # ends before removal anyway
        .order_by("pk")
        .values_list("pk", "principal_id", "entitlement__service_id", "last_used_at")
    )
    created = 0
    for chunk in _chunks(candidates):
        with transaction.atomic():
            rows = _create_removals(chunk, now=now, rule=rule)
            for removal in rows:
                audit_record(
                    actor=SYSTEM,
                    action=actions.REMOVAL_DETECTED,
                    target=removal,
                    after={
                        "status": S.DETECTED,
                        "grant": removal.grant_id,
                        "last_used_at": removal.last_used_at,
                        "window_days": removal.window_days,
                    },
                )
                _move(
                    removal,
                    "schedule",
                    actor=SYSTEM,
                    reason=f"not used for {rule.window_days} days",
                    scheduled_at=now,
                    remove_after=now + notice,
                )
            _notify([r.pk for r in rows], "scheduled")
            created += len(rows)
    return created


def _create_removals(chunk, *, now: datetime, rule: UnusedRule) -> list[UnusedRemoval]:
    objs = [
        UnusedRemoval(
            grant_id=grant_id,
            principal_id=principal_id,
            service_id=service_id,
            status=S.DETECTED,
            window_days=rule.window_days,
            last_used_at=last_used,
            detected_at=now,
            updated_at=now,
        )
        for grant_id, principal_id, service_id, last_used in chunk
    ]
    try:
        with transaction.atomic():
            return UnusedRemoval.objects.bulk_create(objs)
    except IntegrityError:  # a removal appeared meanwhile: one by one, skipping those
        out = []
        for obj in objs:
            try:
                with transaction.atomic():
                    obj.save(force_insert=True)
                out.append(obj)
            except IntegrityError:
                obj.pk = None
        return out


def removals_remove_due(*, now: datetime | None = None) -> dict[str, int]:
    """Revoke grants whose notice period is over, re-checking the rule first: used again or
    no longer active ⇒ cancelled; usage data no longer fresh ⇒ held until it is."""
    now = now or timezone.now()
    rule = UnusedRule.from_settings()
    counts = {"removed": 0, "cancelled": 0, "held": 0}
    ids = list(
        UnusedRemoval.objects.filter(status=S.SCHEDULED, remove_after__lte=now)
        .order_by("remove_after", "pk")
        .values_list("pk", flat=True)
    )
    fresh = fresh_service_ids(now=now, rule=rule)
    removed_ids = []
    for pk in ids:
        with transaction.atomic():
            removal = (
                UnusedRemoval.objects.select_for_update(of=("self",))
                .select_related("grant")
                .get(pk=pk)
            )
            if removal.status != S.SCHEDULED or removal.remove_after > now:
                continue
            grant = removal.grant
            if grant.status != Grant.Status.ACTIVE:
                why = f"grant is {grant.status}"
            elif grant.last_used_at and grant.last_used_at > rule.cutoff(now):
                why = f"used again on {grant.last_used_at:%Y-%m-%d %H:%M}"
            else:
                why = ""
            if why:
                _move(removal, "cancel", actor=SYSTEM, reason=why, closed_reason=why[:300])
                counts["cancelled"] += 1
                continue
            if removal.service_id not in fresh:
                counts["held"] += 1
                continue
            reason = (
                f"unused access: not used for {removal.window_days} days "
                f"(removal #{removal.pk}; restorable for {settings.TOLLGATE_UNUSED_RESTORE_DAYS} days)"
            )
            access_services.grant_revoke(actor=SYSTEM, grant_id=grant.pk, reason=reason)
            _move(removal, "remove", actor=SYSTEM, reason=reason, removed_at=now)
            removed_ids.append(removal.pk)
            counts["removed"] += 1
    for chunk in _chunks(removed_ids):
        with transaction.atomic():
            _notify(chunk, "removed")
    return counts


def unused_daily(*, now: datetime | None = None) -> dict[str, int]:
    """The daily run (the beat task holds an advisory lock around it)."""
    now = now or timezone.now()
    counts = {
        "cancelled_used_again": removals_cancel_used_again(now=now),
        "opt_outs_ended": opt_outs_expire(now=now),
        "detected": unused_detect(now=now),
    }
    counts.update(removals_remove_due(now=now))
    return counts


def removal_opt_out(
    *, actor: User, removal_id: int, reason: str, days: int, now: datetime | None = None
) -> UnusedRemoval:
    """Keep the access for ``days`` (at most TOLLGATE_UNUSED_OPT_OUT_MAX_DAYS): the holder,
    their manager or the owner team may; the grant is evaluated again afterwards."""
    now = now or timezone.now()
    reason = (reason or "").strip()
    if len(reason) < 5:
        raise ValidationError("say why the access is still needed", field="reason")
    limit = settings.TOLLGATE_UNUSED_OPT_OUT_MAX_DAYS
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= limit:
        raise ValidationError(f"an opt-out lasts 1 to {limit} days", field="days")
    with transaction.atomic():
        removal = (
            UnusedRemoval.objects.select_for_update(of=("self",))
            .select_related("principal", "service")
            .filter(pk=removal_id)
            .first()
        )
        if removal is None:
            raise ValidationError(f"no removal #{removal_id}", field="removal")
        if not may_opt_out(actor, removal):
            raise NotPermitted("only the holder, their manager or the owner team opts out")
        _move(
            removal,
            "opt_out",
            actor=actor,
            reason=reason,
            opted_out_by=actor,
            opt_out_reason=reason[:500],
            opt_out_until=now + timedelta(days=days),
        )
    return removal


def removal_restore(
    *, actor: User, removal_id: int, reason: str, now: datetime | None = None
) -> UnusedRemoval:
    """Re-create removed access (a new grant, same end date bound, through the outbox)."""
    now = now or timezone.now()
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("say why the access is restored", field="reason")
    with transaction.atomic():
        removal = (
            UnusedRemoval.objects.select_for_update(of=("self",))
            .select_related("principal", "service", "grant")
            .filter(pk=removal_id)
            .first()
        )
        if removal is None:
            raise ValidationError(f"no removal #{removal_id}", field="removal")
        if not may_restore(actor, removal):
            raise NotPermitted(
                "only the holder, their manager, the owner team or an admin restores access"
            )
        if removal.status != S.REMOVED:
            raise Conflict(f"removal #{removal.pk} is {removal.status}: nothing to restore")
        days = settings.TOLLGATE_UNUSED_RESTORE_DAYS
        if removal.removed_at and removal.removed_at + timedelta(days=days) < now:
            raise ValidationError(
                f"access removed more than {days} days ago is requested again, not restored",
                field="removal",
            )
        grant = access_services.grant_restore(
            actor=actor, revoked_grant_id=removal.grant_id, reason=reason
        )
        _move(
            removal,
            "restore",
            actor=actor,
            reason=reason,
            restored_grant=grant,
            restored_by=actor,
            restored_at=now,
            restore_reason=reason[:500],
        )
    return removal


def removals_group_by(rows: Iterable[UnusedRemoval], key) -> dict:
    out: dict = defaultdict(list)
    for row in rows:
        out[key(row)].append(row)
    return out
