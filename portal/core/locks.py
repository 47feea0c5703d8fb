"""Locks: advisory locks so two runs of a periodic task never overlap (no-op on SQLite), and
the one order in which transactions take row locks (``LOCK_ORDER``)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection


def _key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def advisory_lock(name: str) -> Iterator[bool]:
    """Yield True when this process holds the lock, False when another run holds it."""
    if connection.vendor != "postgresql":
        yield True
        return
    key = _key(name)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        acquired = bool(cursor.fetchone()[0])
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


# --- Row lock order -------------------------------------------------------------------
# The one order in which a transaction takes row locks (``select_for_update``), written once.
# A transaction may skip types but never goes back to an earlier one: two transactions that
# both follow it cannot deadlock. Every audited change ends with the audit chain head
# (``audit_record``), so every row a transaction changes is locked before its first audit event.
LOCK_ORDER: tuple[str, ...] = (
    "accounts.User",  # a person (FOR NO KEY UPDATE): serialises their requests and leaving
    "access.AccessRequest",
    "access.Grant",  # by id, when several
    "access.SyncJob",  # a grant's jobs, after the grant
    "access.ManualTask",
    "access.FollowUpReview",
    "tokens.ApiToken",
    "audit.ChainHead",  # last: taken by the first audit event, held until commit
)

_trace = threading.local()


def lock_rank(name: str) -> int:
    """The position of a row type in ``LOCK_ORDER`` (a name not in it is a bug)."""
    try:
        return LOCK_ORDER.index(name)
    except ValueError:
        raise ValueError(f"{name!r} is not in LOCK_ORDER; add it where it belongs") from None


def lock_note(name: str, *keys: object) -> None:
    """Say that the rows ``keys`` of ``name`` were just locked (recorded only inside
    ``lock_trace``)."""
    lock_rank(name)
    taken = getattr(_trace, "taken", None)
    if taken is None:
        return
    for key in keys:  # no keys: no row was locked
        if (name, key) not in taken:
            taken.append((name, key))


@contextmanager
def lock_trace() -> Iterator[list[tuple[str, object]]]:
    """Record the row locks noted meanwhile, first acquisition of each row only (tests)."""
    previous = getattr(_trace, "taken", None)
    _trace.taken = []
    try:
        yield _trace.taken
    finally:
        _trace.taken = previous


def lock_order_violations(taken: list[tuple[str, object]]) -> list[str]:
    """The acquisitions in ``taken`` that go back to an earlier type of ``LOCK_ORDER``."""
    problems = []
    highest = -1
    last = ""
    for name, key in taken:
        rank = lock_rank(name)
        if rank < highest:
            problems.append(f"{name} #{key} locked after {last}")
        elif rank > highest:
            highest, last = rank, name
    return problems


def hook_register(hooks: list[Callable[..., Any]], fn: Callable[..., Any], *, order: str) -> None:
    """Register ``fn`` in ``hooks`` (e.g. ``accounts.services.LEAVER_HOOKS``), kept sorted by
    the first row type each hook locks (``order``, a name of ``LOCK_ORDER``). Hooks added
    without an order run after those with one. Registering twice is a no-op."""
    _hook_orders[fn] = lock_rank(order)
    if fn not in hooks:
        hooks.append(fn)
    hooks.sort(key=lambda hook: _hook_orders.get(hook, len(LOCK_ORDER)))


_hook_orders: dict[Callable[..., Any], int] = {}
