"""The in-memory fake connector, and its failure injection (used by outbox tests)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from connectors.base import EntitlementRef, PermanentError, PrincipalRef, TransientError
from connectors.fake import FakeConnector
from connectors.registry import get_connector

ANN = PrincipalRef("ann@example.com")
BOB = PrincipalRef("bob@example.com", login="bob")
READ = EntitlementRef("billing", "read")
WRITE = EntitlementRef("billing", "write", {"level": "admin"})


@pytest.mark.sqlite
def test_transient_failures_then_success_share_state_across_instances(settings):
    backend = FakeConnector.backend("billing")
    backend.inject(transient=2)
    outcomes = []
    for _attempt in range(4):  # a fresh connector per job attempt, as the outbox builds it
        conn = get_connector("fake", {"namespace": "billing"})
        try:
            outcomes.append(conn.grant(ANN, READ, idempotency_key="job-1").changed)
        except TransientError as exc:
            outcomes.append(exc.message)
    assert outcomes == [
        "fake billing: injected transient failure of grant",
        "fake billing: injected transient failure of grant",
        True,
        False,  # redelivery: desired state already held, no second effect
    ]
    assert backend.holds("ann@example.com", "read")
    assert backend.effects == 1
    assert [call.outcome for call in backend.calls_for("grant")] == [
        "transient",
        "transient",
        "changed",
        "noop",
    ]


@pytest.mark.sqlite
def test_permanent_failure_then_retry_succeeds():
    backend = FakeConnector.backend("ledger")
    backend.inject(permanent=1)
    conn = FakeConnector({"namespace": "ledger"})
    with pytest.raises(PermanentError, match="injected permanent failure of grant"):
        conn.grant(ANN, READ, idempotency_key="job-1")
    assert backend.holders == {}
    assert backend.effects == 0
    assert conn.grant(ANN, READ, idempotency_key="job-1").changed is True
    assert backend.effects == 1


def test_injection_order_transient_before_permanent_and_operation_filter():
    conn = FakeConnector(namespace="mixed")
    conn.state.inject(transient=1, permanent=1, operations=["revoke"])
    assert conn.grant(ANN, READ, idempotency_key="g").changed is True  # grants unaffected
    with pytest.raises(TransientError):
        conn.revoke(ANN, READ, idempotency_key="r")
    with pytest.raises(PermanentError):
        conn.revoke(ANN, READ, idempotency_key="r")
    assert conn.revoke(ANN, READ, idempotency_key="r").changed is True
    assert conn.revoke(ANN, READ, idempotency_key="r").changed is False
    assert conn.state.effects == 2


def test_config_failure_budget_is_applied_once_per_namespace():
    config = {"namespace": "cfg", "fail_transient": 1}
    with pytest.raises(TransientError):
        FakeConnector(config).grant(ANN, READ, idempotency_key="k")
    assert FakeConnector(config).grant(ANN, READ, idempotency_key="k").changed is True
    assert FakeConnector.backend("cfg").transient_left == 0


def test_list_holders_pages_and_last_used():
    conn = FakeConnector(namespace="list")
    for person in (BOB, ANN, PrincipalRef("cy@example.com")):
        conn.grant(person, READ, idempotency_key=f"g-{person.email}")
    conn.grant(BOB, WRITE, idempotency_key="w")
    conn.state.set_holder("stranger", "read")

    first = conn.list_holders(READ, page_size=2)
    assert [h.principal for h in first.holders] == ["ann@example.com", "bob"]
    second = conn.list_holders(READ, cursor=first.next_cursor, page_size=2)
    assert [h.principal for h in second.holders] == ["cy@example.com", "stranger"]
    assert second.next_cursor is None
    assert [(h.entitlement, h.principal, h.level) for h in conn.iter_holders(page_size=1)][-1] == (
        "write",
        "bob",
        "admin",
    )

    assert conn.last_used(BOB) is None
    when = datetime(2025, 1, 2, tzinfo=UTC)
    conn.state.set_last_used("bob", when)
    assert conn.last_used(BOB) == when


def test_concurrent_grants_make_one_effect():
    conn = FakeConnector(namespace="race", delay_ms=5)
    barrier = threading.Barrier(8)
    results = []

    def worker():
        barrier.wait()
        results.append(conn.grant(ANN, READ, idempotency_key="same").changed)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]
    assert conn.state.effects == 1


def test_reset_all_forgets_every_namespace():
    FakeConnector(namespace="gone").grant(ANN, READ, idempotency_key="k")
    FakeConnector.reset_all()
    assert FakeConnector.backend("gone").holders == {}
