"""One way to send a Celery task after the current transaction commits.

Every app enqueues through :func:`enqueue_on_commit`, so that three rules hold everywhere:

* **after commit**: the task is sent from ``transaction.on_commit(..., robust=True)``; a task
  never sees a row its transaction has not committed, and a broker outage at send time is
  logged instead of failing the change (outbox sweepers resend what matters);
* **the mute switch**: inside :func:`notifications_muted` (bulk back-fills such as the demo
  history) tasks of the ``notify`` kind are not sent at all;
* **the queue settings**: a task goes to the queue named by its kind
  (``TOLLGATE_<KIND>_QUEUE`` when set, else ``CELERY_TASK_ROUTES``/the default queue).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import transaction

_muted = threading.local()

#: kind → the setting that names its queue (``None``: Celery's routes decide)
QUEUE_SETTINGS = {"notify": "TOLLGATE_NOTIFY_QUEUE", "sync": "TOLLGATE_SYNC_QUEUE"}


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


def queue_for(kind: str | None) -> str | None:
    name = QUEUE_SETTINGS.get(kind or "")
    return getattr(settings, name, None) if name else None


def enqueue_on_commit(
    task: Any,
    *args: Any,
    kind: str | None = None,
    countdown: float | None = None,
    after_send: Callable[[], None] | None = None,
) -> bool:
    """Send ``task(*args)`` once the surrounding transaction commits.

    ``kind`` is ``"notify"`` for notifications (muted by :func:`notifications_muted`),
    ``"sync"`` for downstream jobs, or ``None``. ``after_send`` runs after a successful send
    (the outbox stamps ``enqueued_at``). Returns ``False`` when muted (nothing scheduled).
    """
    if kind == "notify" and notifications_are_muted():
        return False
    options: dict[str, Any] = {}
    queue = queue_for(kind)
    if queue:
        options["queue"] = queue
    if countdown:
        options["countdown"] = countdown

    def send() -> None:
        task.apply_async(args=list(args), **options)
        if after_send is not None:
            after_send()

    transaction.on_commit(send, robust=True)
    return True
