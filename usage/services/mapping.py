"""Usage sources and their freshness (``UsageCoverage``), mapping rules and principal aliases:
the configuration that ingestion reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Coalesce, Greatest, Least

from access.models import Entitlement, Service
from accounts.models import User
from audit.services import audit_record
from portal.core.actors import UNUSED_ACCESS, actor_may
from portal.core.errors import Conflict, NotPermitted, ValidationError

from .. import registry as actions
from ..models import (
    PrincipalAlias,
    UsageCoverage,
    UsageMappingRule,
    UsageSource,
)
from ..policies import may_manage_usage

SYSTEM = UNUSED_ACCESS
BATCH = 1000


def _chunks(items: list, size: int = BATCH) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


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
    if not actor_may(actor, may_manage_usage):
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
    if not actor_may(actor, may_manage_usage):
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
    if not actor_may(actor, may_manage_usage):
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
