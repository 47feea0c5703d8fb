"""Helpers to tamper with the audit table the way an attacker with database access would."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

from audit import registry as actions
from audit.chain import GENESIS_HASH, compute_hash
from audit.models import AuditEvent, ChainHead
from audit.selectors import audit_rows_for_verification
from audit.services import audit_record
from portal.core.actors import SystemActor

TRIGGER = "audit_event_no_update"


def require_postgresql() -> None:
    """These tests prove PostgreSQL behaviour: fail loudly (never skip) elsewhere."""
    assert connection.vendor == "postgresql", (
        "this test needs PostgreSQL: run with DATABASE_URL=postgres://..."
    )


@contextmanager
def trigger_disabled() -> Iterator[None]:
    """Switch the append-only trigger off (as a superuser could), always back on after."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        # Rows inserted earlier in this transaction have deferred FK checks pending,
        # which ALTER TABLE refuses to run over: fire them now.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"ALTER TABLE audit_auditevent DISABLE TRIGGER {TRIGGER}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"ALTER TABLE audit_auditevent ENABLE TRIGGER {TRIGGER}")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def trigger_enabled() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgenabled FROM pg_trigger WHERE tgname = %s AND NOT tgisinternal", [TRIGGER]
        )
        row = cursor.fetchone()
    return row is not None and row[0] == "O"


def append_events(count: int, *, prefix: str = "t") -> list[AuditEvent]:
    return [
        audit_record(
            actor=SystemActor("test-writer"),
            action=actions.USER_UPDATED,
            target_type="test.thing",
            target_id=f"{prefix}-{n}",
            after={"n": n},
            reason=f"event {n}",
        )
        for n in range(count)
    ]


def rewrite_chain_from_start(*, new_reason: str, key: bytes | None = None) -> None:
    """Edit the first row and re-hash every row after it consistently (and the head).

    With the chain's key the chain then verifies on its own (only checkpoints kept outside
    the database can reveal the rewrite); with another ``key`` it does not.
    """
    rows = list(audit_rows_for_verification())
    prev = GENESIS_HASH
    with trigger_disabled():
        for index, row in enumerate(rows):
            if index == 0:
                row["reason"] = new_reason
            digest = compute_hash(prev, row, key=key)
            AuditEvent.objects.filter(pk=row["id"]).update(
                reason=row["reason"], prev_hash=prev, hash=digest
            )
            prev = digest
    ChainHead.objects.filter(pk=1).update(hash=prev)
