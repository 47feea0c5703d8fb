"""Per-request (or per-task) context: request id, client IP, user agent.

Held in contextvars so that services, audit and logging can read it without a
request object being threaded through every call.
"""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestContext:
    request_id: str = ""
    ip: str | None = None
    user_agent: str = ""


_EMPTY = RequestContext()
_current: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "tollgate_request_context", default=None
)


def current() -> RequestContext:
    return _current.get() or _EMPTY


def new_request_id() -> str:
    return uuid.uuid4().hex


@contextmanager
def bind(
    *, request_id: str | None = None, ip: str | None = None, user_agent: str = ""
) -> Iterator[RequestContext]:
    ctx = RequestContext(request_id=request_id or new_request_id(), ip=ip, user_agent=user_agent)
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)
