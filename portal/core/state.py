"""Transitions are data: a table of (state, action) -> next state, and one helper.

Every pair not in a table is refused with :class:`InvalidTransition` (HTTP 409).
The helper stamps the change and writes the audit event in the caller's transaction.

``portal.core`` sits below every app, so it does not import ``audit``: the audit app registers
its one write path here (:func:`register_audit_recorder`, from ``AuditConfig.ready()``) and
:func:`transition` calls whatever is registered. A transition with no recorder registered is
refused (every state change must be audited).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.utils import timezone

from .errors import InvalidTransition

Table = Mapping[tuple[str, str], str]


class AuditRecorder(Protocol):
    def __call__(
        self,
        *,
        actor: Any,
        action: str,
        target: models.Model,
        before: dict[str, Any],
        after: dict[str, Any],
        reason: str,
    ) -> object: ...


_recorder: AuditRecorder | None = None


def register_audit_recorder(recorder: AuditRecorder) -> None:
    """Name the function that writes a transition's audit event (``audit.services.audit_record``)."""
    global _recorder
    _recorder = recorder


def _audit_recorder() -> AuditRecorder:
    if _recorder is None:
        raise ImproperlyConfigured(
            "no audit recorder registered: add 'audit' to INSTALLED_APPS (it registers "
            "audit.services.audit_record in AuditConfig.ready())"
        )
    return _recorder


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
    actor: Any,
    audit_action: str,
    field: str = "status",
    reason: str = "",
    extra_fields: Mapping[str, Any] | None = None,
    before_extra: Mapping[str, Any] | None = None,
    after_extra: Mapping[str, Any] | None = None,
) -> str:
    """Move ``obj`` along ``table`` by ``action``; save the changed fields; audit it."""
    record = _audit_recorder()
    current = getattr(obj, field)
    new = next_state(table, current, action, label=str(obj._meta.verbose_name))
    setattr(obj, field, new)
    update_fields = [field]
    for name, value in (extra_fields or {}).items():
        setattr(obj, name, value)
        update_fields.append(name)
    if hasattr(obj, "updated_at"):
        obj.updated_at = timezone.now()
        update_fields.append("updated_at")
    obj.save(update_fields=update_fields)
    record(
        actor=actor,
        action=audit_action,
        target=obj,
        before={field: current, **(before_extra or {})},
        after={field: new, **(after_extra or {})},
        reason=reason,
    )
    return new
