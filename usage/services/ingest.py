"""Evidence of use into ``Grant.last_used_at``: CloudTrail-style event files
(``usage_import_events``) and connectors that report last use (``usage_collect_service``),
through ``access.services.grants_record_use``; each marks its source fresh.
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections import Counter
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from access import services as access_services
from access.models import Grant, Service
from accounts.models import User
from audit.services import audit_record
from portal.core.actors import USAGE, actor_label, refuse_string
from portal.core.errors import ValidationError

from .. import cloudtrail
from .. import registry as actions
from ..models import (
    PrincipalAlias,
    UsageImport,
    UsageMappingRule,
    UsageSource,
)
from .mapping import (
    _chunks,
    coverage_mark,
    source_for_connector,
    source_for_events,
)
from .removals import removals_cancel_used_again


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
    """Import one CloudTrail-style file. A malformed file, or one larger than
    ``TOLLGATE_USAGE_MAX_BYTES`` once decompressed (a gzipped file is counted while it is
    decompressed), raises ValidationError naming the file, the line/offset or the limit and
    the reason, and nothing is stored. Unknown principals and actions are counted
    and reported (``UsageImport.report``), not fatal."""
    refuse_string(actor)
    now = now or timezone.now()
    limit = getattr(settings, "TOLLGATE_USAGE_MAX_BYTES", cloudtrail.MAX_BYTES)
    try:
        events = cloudtrail.parse(data, max_bytes=limit)
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
        chunk_ent_ids = {e for _, e in chunk}
        for pk, user_id, ent_id in Grant.objects.filter(
            status=Grant.Status.ACTIVE, principal_id__in=user_ids, entitlement_id__in=chunk_ent_ids
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
            imported_by=actor_label(actor),
        )
        if first is not None and matcher.service_ids:
            coverage_mark(
                source=source,
                service_ids=matcher.service_ids,
                covered_since=first,
                complete_until=min(last, now),  # type: ignore[type-var]  # set when first is
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
            actor=USAGE,
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
