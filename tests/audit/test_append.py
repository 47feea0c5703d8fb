"""How an event is appended on PostgreSQL: in one statement (a compare-and-swap on the chain
head) when the head is where this connection left it, else by locking and reading the head
first. Either way one chain that verifies, the row stored as returned, nothing truncated."""

from __future__ import annotations

import pytest
from django.db import DataError, connection, transaction
from django.test.utils import CaptureQueriesContext

from audit import registry as actions
from audit.models import AuditEvent, ChainHead
from audit.services import audit_record
from audit.verify import verify_chain
from portal.core.actors import SystemActor

from .helpers import require_postgresql

pytestmark = pytest.mark.django_db

ACTOR = SystemActor("append-test")


def _record(n: int, **extra) -> AuditEvent:
    return audit_record(
        actor=ACTOR,
        action=actions.USER_UPDATED,
        target_type="test.thing",
        target_id=n,
        **extra,
    )


def _statements(fn) -> tuple[object, list[str]]:
    with CaptureQueriesContext(connection) as ctx:
        result = fn()
    return result, [q["sql"] for q in ctx.captured_queries]


def test_an_append_where_this_connection_left_the_head_is_one_statement():
    require_postgresql()
    with transaction.atomic():
        _record(1)
        event, statements = _statements(lambda: _record(2, before={"a": 1}, after=None))

    assert len(statements) == 1, statements
    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.seq, stored.prev_hash, stored.hash) == (event.seq, event.prev_hash, event.hash)
    assert (stored.before, stored.after) == ({"a": 1}, None)
    assert AuditEvent.objects.filter(pk=event.pk, after__isnull=True).exists()  # SQL NULL
    head = ChainHead.objects.get(pk=1)
    assert (head.seq, head.hash) == (event.seq, event.hash)
    result = verify_chain()
    assert result.ok, result.broken


def test_after_a_rollback_the_stale_guess_falls_back_to_locking_the_head():
    require_postgresql()
    first = _record(1)
    with pytest.raises(RuntimeError), transaction.atomic():
        _record(2)  # moves the head, then rolled back: this connection's guess is stale
        raise RuntimeError("the change failed")

    event, statements = _statements(lambda: _record(3))

    # the compare-and-swap that inserted nothing, the lock and read, the insert with the head
    assert len(statements) == 3, statements
    assert event.seq == first.seq + 1 and event.prev_hash == first.hash
    assert list(AuditEvent.objects.values_list("target_id", flat=True)) == ["1", "3"]
    result = verify_chain()
    assert result.ok, result.broken


def test_an_append_by_another_writer_in_between_is_never_overwritten():
    require_postgresql()
    first = _record(1)
    guess = connection._tollgate_audit_head
    second = _record(2)
    connection._tollgate_audit_head = guess  # as if another connection had appended #2

    third = _record(3)

    assert [e.seq for e in (first, second, third)] == [first.seq, first.seq + 1, first.seq + 2]
    assert third.prev_hash == second.hash
    assert AuditEvent.objects.count() == 3
    result = verify_chain()
    assert result.ok, result.broken


def test_a_value_too_long_for_its_column_is_refused_not_truncated():
    require_postgresql()
    _record(1)
    head = ChainHead.objects.filter(pk=1).values("seq", "hash").first()

    with pytest.raises(DataError), transaction.atomic():
        audit_record(actor=ACTOR, action=actions.USER_UPDATED, target_type="t" * 65, target_id=2)

    assert AuditEvent.objects.count() == 1
    assert ChainHead.objects.filter(pk=1).values("seq", "hash").first() == head
    assert verify_chain().ok
