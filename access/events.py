"""What happened to a request, for apps that keep something in step with it (chat messages),
without access importing them: an app appends a callable to REQUEST_EVENT_HOOKS in its
AppConfig.ready().

A hook is called as ``hook(request=<AccessRequest>, event=<RequestEvent>)`` inside the
transaction of the change, after it is written, so that what it writes (an outbox row)
commits or rolls back with the change. A hook must be cheap (inserts, no network I/O, no
lock on rows of ``LOCK_ORDER``) and must not raise for a reason of its own: an exception
rolls the decision back.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any


class RequestEvent(StrEnum):
    WAITING = "waiting"  # a stage started (submitted, advanced) or gained approvers (escalated)
    APPROVAL_GIVEN = "approval-given"  # one approval of an N-of-M stage that still waits
    APPROVED = "approved"
    DENIED = "denied"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    GRANT_ACTIVE = "grant-active"  # the approved request's grant is provisioned and active


REQUEST_EVENT_HOOKS: list[Callable[..., Any]] = []


def request_event(request: Any, event: RequestEvent) -> None:
    """Tell every registered hook (in the caller's transaction); nothing while notifications
    are muted (bulk back-fills such as the demo history)."""
    from .services._common import notifications_are_muted

    if notifications_are_muted():
        return
    for hook in REQUEST_EVENT_HOOKS:
        hook(request=request, event=event)
