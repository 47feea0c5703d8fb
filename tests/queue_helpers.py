"""Read what ``portal.core.queue.enqueue_on_commit`` scheduled, from captured on-commit callbacks."""

from __future__ import annotations


def enqueued_task_names(callbacks) -> list[str]:
    """The Celery task names the callbacks will send (``enqueue_on_commit`` closures only)."""
    names = []
    for cb in callbacks:
        if cb.__qualname__ != "enqueue_on_commit.<locals>.send":
            continue
        names += [
            c.cell_contents.name
            for c in cb.__closure__ or ()
            if hasattr(c.cell_contents, "apply_async")
        ]
    return names
