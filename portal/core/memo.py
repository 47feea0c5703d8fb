"""Read-once lookups for the length of one unit of work (a page, a batch, the demo seed).

Some reads repeat many times inside one unit of work and cannot change within it: the approval
policy of an entitlement, who sits in the owner team, the active standards. Inside
:func:`lookup_scope`, :func:`memoized` runs such a read once per key and hands every later
caller the same answer; outside a scope it just runs the read (nothing is kept between units of
work, so nothing goes stale across requests).

Only reads whose answer the unit of work itself does not change belong here: never the state the
unit is changing (held grants, open requests, approvals). Callers that mutate what they get
must be given a copy (``copy=``).
"""

from __future__ import annotations

import copy as _copy
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

T = TypeVar("T")

_scope: ContextVar[dict[Hashable, object] | None] = ContextVar(
    "tollgate_lookup_scope", default=None
)


@contextmanager
def lookup_scope() -> Iterator[dict[Hashable, object]]:
    """Keep memoized reads until the block ends (a nested scope shares the outer one)."""
    current = _scope.get()
    if current is not None:
        yield current
        return
    store: dict[Hashable, object] = {}
    token = _scope.set(store)
    try:
        yield store
    finally:
        _scope.reset(token)


def in_scope() -> bool:
    return _scope.get() is not None


def memoized(key: Hashable, read: Callable[[], T], *, copy: bool = False) -> T:
    """``read()`` once per ``key`` inside a :func:`lookup_scope`; every time outside one.

    ``copy=True`` hands out a deep copy, for callers that change what they get.
    """
    store = _scope.get()
    if store is None:
        return read()
    if key in store:
        value = store[key]
    else:
        value = store[key] = read()
    return _copy.deepcopy(value) if copy else value  # type: ignore[return-value]


def forget(prefix: str) -> None:
    """Drop the memoized reads whose key is a tuple starting with ``prefix`` (after a write
    that changes them inside the scope)."""
    store = _scope.get()
    if store is None:
        return
    for key in [k for k in store if isinstance(k, tuple) and k and k[0] == prefix]:
        del store[key]
