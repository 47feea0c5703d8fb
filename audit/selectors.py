from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .chain import HASHED_FIELDS
from .models import AuditEvent


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
