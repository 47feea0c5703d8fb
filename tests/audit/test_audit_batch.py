"""audit_batch: a block's events hashed onto the chain in memory and inserted in one statement
when the block ends; the same chain as one event at a time, and nothing on an exception."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from audit import registry as actions
from audit.models import AuditEvent, ChainHead
from audit.services import audit_batch, audit_record
from audit.verify import verify_chain

pytestmark = pytest.mark.django_db


def record(n: int) -> None:
    audit_record(actor=None, action=actions.USER_UPDATED, target_type="t", target_id=n)


def head() -> tuple[int, str]:
    row = ChainHead.objects.get(pk=1)
    return row.seq, row.hash


def test_a_batch_extends_the_chain_like_single_events_in_fewer_statements():
    record(0)  # the head exists, as in any running system
    with transaction.atomic():
        with CaptureQueriesContext(connection) as batched, audit_batch():
            for n in range(1, 6):
                record(n)
            assert AuditEvent.objects.count() == 1  # nothing written before the block ends
        record(6)  # a single event after the batch links onto its last one
    assert [e.target_id for e in AuditEvent.objects.order_by("seq")] == [str(n) for n in range(7)]
    seqs = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(seqs[0], seqs[0] + 7))
    last = AuditEvent.objects.order_by("seq").last()
    assert head() == (last.seq, last.hash)
    assert verify_chain().ok
    # head taken once, one insert, head moved once (five single events: fifteen statements)
    writes = [q["sql"] for q in batched.captured_queries if not q["sql"].startswith("SELECT")]
    assert len(writes) == 3, writes


def test_an_exception_leaves_nothing_written_and_the_head_where_it_was():
    record(0)
    before = head()
    with transaction.atomic():
        with pytest.raises(ValueError), transaction.atomic(), audit_batch():
            record(1)
            record(2)
            raise ValueError("the unit of work failed")
        assert head() == before
        record(3)
    assert [e.target_id for e in AuditEvent.objects.order_by("seq")] == ["0", "3"]
    assert verify_chain().ok


@pytest.mark.django_db(transaction=True)
def test_a_batch_needs_a_transaction():
    with pytest.raises(RuntimeError, match="needs a transaction"), audit_batch():
        pass


def test_a_nested_batch_joins_the_outer():
    with transaction.atomic(), audit_batch():
        record(1)
        with audit_batch():
            record(2)
        assert AuditEvent.objects.count() == 0  # the inner block wrote nothing of its own
    assert AuditEvent.objects.count() == 2
    assert verify_chain().ok


def test_an_empty_batch_writes_nothing():
    with transaction.atomic(), CaptureQueriesContext(connection) as queries, audit_batch():
        pass
    assert queries.captured_queries == []
    assert AuditEvent.objects.count() == 0
