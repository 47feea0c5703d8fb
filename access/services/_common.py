"""Helpers shared by the access services: notifications after commit, audited field changes."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record

logger = logging.getLogger("access.services")

_muted = threading.local()


@contextmanager
def notifications_muted() -> Iterator[None]:
    """Write without notifying anyone (bulk back-fills such as the demo history)."""
    previous = getattr(_muted, "on", False)
    _muted.on = True
    try:
        yield
    finally:
        _muted.on = previous


def notifications_are_muted() -> bool:
    return getattr(_muted, "on", False)


def notify(task_name: str, *args: Any) -> None:
    """Enqueue a request notification after commit; a broker outage must not fail the change."""
    if notifications_are_muted():
        return
    from .. import tasks

    task = getattr(tasks, task_name)
    transaction.on_commit(lambda: task.delay(*args), robust=True)


def notify_queued(task_name: str, *args: Any) -> None:
    """Enqueue a notification on the notification queue after commit (grants, provisioning)."""
    from .. import tasks

    task = getattr(tasks, task_name)
    transaction.on_commit(
        lambda: task.apply_async(args=list(args), queue=settings.TOLLGATE_NOTIFY_QUEUE),
        robust=True,
    )


def send_now(task_name: str, *args: Any) -> None:
    """Enqueue a notification now (outside a transaction); an outage is logged."""
    from .. import tasks

    try:
        getattr(tasks, task_name).apply_async(args=list(args), queue=settings.TOLLGATE_NOTIFY_QUEUE)
    except Exception:
        logger.warning("could not enqueue %s%s", task_name, args, exc_info=True)


def snapshot(obj: Any, fields: Sequence[str]) -> dict[str, Any]:
    out = {}
    for name in fields:
        value = getattr(obj, name)
        if hasattr(value, "pk"):
            value = value.pk
        elif isinstance(value, Decimal):
            value = str(value)
        out[name] = value
    return out


def save_audited_changes(
    obj: Any, *, fields: Sequence[str], before: dict[str, Any], actor: Any, action: str
) -> None:
    """Save ``obj`` and audit only the fields that differ from ``before``; nothing when none do."""
    after = snapshot(obj, fields)
    changed = [k for k in after if after[k] != before[k]]
    if not changed:
        return
    obj.updated_at = timezone.now()
    obj.save()
    audit_record(
        actor=actor,
        action=action,
        target=obj,
        before={k: before[k] for k in changed},
        after={k: after[k] for k in changed},
    )
