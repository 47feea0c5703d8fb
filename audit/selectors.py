from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet

from portal.core.errors import NotPermitted

from .chain import HASHED_FIELDS
from .models import AuditEvent
from .policies import may_read_audit


def audit_rows_for_verification(
    *, up_to_seq: int | None = None, chunk_size: int = 2000
) -> Iterator[dict[str, Any]]:
    fields = ("id", "prev_hash", "hash", *HASHED_FIELDS)
    qs = AuditEvent.objects.order_by("seq")
    if up_to_seq is not None:
        qs = qs.filter(seq__lte=up_to_seq)
    return qs.values(*fields).iterator(chunk_size=chunk_size)


def audit_events_for_target(*, target_type: str, target_id) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(target_type=target_type, target_id=str(target_id))
        .select_related("actor")
        .order_by("seq")
    )


@dataclass(frozen=True)
class AuditFilters:
    actor: str = ""
    action: str = ""
    target_type: str = ""
    target_id: str = ""
    team: str = ""  # team slug
    since: datetime | None = None
    until: datetime | None = None


USER_TARGET_TYPE = "accounts.user"


def audit_events_search(*, viewer, filters: AuditFilters) -> QuerySet[AuditEvent]:
    """Events matching every filter, newest first; raises NotPermitted for non-readers.

    ``team`` matches events whose actor, or whose target person, is in the team (home team
    or a membership). ``since`` is inclusive, ``until`` exclusive.
    """
    if not may_read_audit(viewer):
        raise NotPermitted("only auditors, security and platform admins read the audit trail")
    qs = AuditEvent.objects.select_related("actor")
    if filters.actor:
        qs = qs.filter(actor_label__iexact=filters.actor.strip())
    if filters.action:
        qs = qs.filter(action=filters.action)
    if filters.target_type:
        qs = qs.filter(target_type=filters.target_type)
    if filters.target_id:
        qs = qs.filter(target_id=str(filters.target_id))
    if filters.team:
        member_ids = list(
            get_user_model()
            .objects.filter(Q(team__slug=filters.team) | Q(memberships__team__slug=filters.team))
            .values_list("pk", flat=True)
            .distinct()
        )
        qs = qs.filter(
            Q(actor_id__in=member_ids)
            | Q(target_type=USER_TARGET_TYPE, target_id__in=[str(pk) for pk in member_ids])
        )
    if filters.since is not None:
        qs = qs.filter(occurred_at__gte=filters.since)
    if filters.until is not None:
        qs = qs.filter(occurred_at__lt=filters.until)
    return qs.order_by("-seq")


def audit_history_for_viewer(*, viewer, target_type: str, target_id: str) -> QuerySet[AuditEvent]:
    if not may_read_audit(viewer):
        raise NotPermitted("only auditors, security and platform admins read the audit trail")
    return (
        AuditEvent.objects.filter(target_type=target_type, target_id=str(target_id))
        .select_related("actor")
        .order_by("-seq")
    )
