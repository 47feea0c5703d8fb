"""Transitions are data: a table of (state, action) -> next state, and one helper.

Every pair not in a table is refused with :class:`InvalidTransition` (HTTP 409).
The helper stamps the change and writes the audit event in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import models

from audit.services import audit_record

from .errors import InvalidTransition

Table = Mapping[tuple[str, str], str]


def next_state(table: Table, state: str, action: str, *, label: str = "object") -> str:
    try:
        return table[(state, action)]
    except KeyError:
        allowed = sorted(a for (s, a) in table if s == state)
        hint = f"; allowed from {state}: {', '.join(allowed)}" if allowed else f"; {state} is final"
        raise InvalidTransition(f"cannot {action} a {label} that is {state}{hint}") from None


def transition(
    obj: models.Model,
    *,
    table: Table,
    action: str,
    actor,
    audit_action: str,
    field: str = "status",
    reason: str = "",
    extra_fields: Mapping[str, Any] | None = None,
    before_extra: Mapping[str, Any] | None = None,
    after_extra: Mapping[str, Any] | None = None,
) -> str:
    """Move ``obj`` along ``table`` by ``action``; save the changed fields; audit it."""
    current = getattr(obj, field)
    new = next_state(table, current, action, label=obj._meta.verbose_name)
    setattr(obj, field, new)
    update_fields = [field]
    for name, value in (extra_fields or {}).items():
        setattr(obj, name, value)
        update_fields.append(name)
    if hasattr(obj, "updated_at"):
        from django.utils import timezone

        obj.updated_at = timezone.now()
        update_fields.append("updated_at")
    obj.save(update_fields=update_fields)
    audit_record(
        actor=actor,
        action=audit_action,
        target=obj,
        before={field: current, **(before_extra or {})},
        after={field: new, **(after_extra or {})},
        reason=reason,
    )
    return new
