"""One contract for every connector (issue #18): the behaviour the outbox and reconciliation
rely on, run by each connector against its real system.

A test module subclasses :class:`ConnectorContract` (``class TestScimContract(ConnectorContract)``)
and provides these pytest fixtures, function-scoped, with fresh downstream state in each test
(or names unique to the test):

* ``connector``: a :class:`~connectors.base.Connector` configured against the real system;
* ``entitlement``: an :class:`~connectors.base.EntitlementRef` it can grant, held by nobody yet;
* ``principals``: at least five :class:`~connectors.base.PrincipalRef` that can be granted;
* ``page_size``: a small int (e.g. 2) so ``list_holders`` needs several pages;
* ``unreachable_connector``: the same kind configured against a closed loopback port (its
  calls raise :class:`~connectors.base.TransientError`, its ``health()`` is not ok);
* ``permanent_failure``: a zero-argument callable performing an operation that must raise
  :class:`~connectors.base.PermanentError` (e.g. granting an entitlement whose downstream group
  does not exist);
* ``secrets``: the secret strings in play (tokens, passwords, DSNs); none may appear in any
  error message or health detail.

A connector that has nothing sensible to probe sets the class attribute
``has_health_probe = False`` on its subclass: its ``health()`` must then say so (ok, "no health
probe") rather than pretend, and the unreachable connector's health is not asserted.

Membership is judged the way reconciliation judges it: ``connector.login_for(p)`` appears among
the ``Holder.principal`` of ``connector.iter_holders(entitlement, page_size=page_size)``,
exactly once.
"""

from __future__ import annotations

import uuid
from collections import Counter
from typing import ClassVar

import pytest

from connectors.base import (
    DONE,
    Connector,
    ConnectorError,
    EntitlementRef,
    Health,
    PermanentError,
    TransientError,
)


def _key(label: str) -> str:
    return f"contract-{label}-{uuid.uuid4().hex[:12]}"


def holder_counts(
    connector: Connector, entitlement: EntitlementRef, page_size: int
) -> Counter[str]:
    """How many times each downstream identity holds ``entitlement``, read page by page."""
    return Counter(
        holder.principal for holder in connector.iter_holders(entitlement, page_size=page_size)
    )


class ConnectorContract:
    """Mix into a test class; see the module docstring for the fixtures it needs."""

    has_health_probe: ClassVar[bool] = True

    # --- grant and revoke are desired-state calls ---------------------------------------
    def test_grant_twice_is_one_membership(self, connector, entitlement, principals, page_size):
        ann = principals[0]
        first = connector.grant(ann, entitlement, idempotency_key=_key("grant-1"))
        second = connector.grant(ann, entitlement, idempotency_key=_key("grant-2"))

        assert (first.changed, first.status) == (True, DONE)
        assert (second.changed, second.status) == (False, DONE)
        counts = holder_counts(connector, entitlement, page_size)
        assert counts[connector.login_for(ann)] == 1
        assert sum(counts.values()) == 1

    def test_redelivered_grant_with_the_same_key_is_one_membership(
        self, connector, entitlement, principals, page_size
    ):
        ann = principals[0]
        key = _key("redelivered")
        connector.grant(ann, entitlement, idempotency_key=key)
        again = connector.grant(ann, entitlement, idempotency_key=key)

        assert again.changed is False
        assert holder_counts(connector, entitlement, page_size)[connector.login_for(ann)] == 1

    def test_revoke_twice_leaves_none(self, connector, entitlement, principals, page_size):
        ann, bob = principals[0], principals[1]
        connector.grant(ann, entitlement, idempotency_key=_key("grant-ann"))
        connector.grant(bob, entitlement, idempotency_key=_key("grant-bob"))

        first = connector.revoke(ann, entitlement, idempotency_key=_key("revoke-1"))
        second = connector.revoke(ann, entitlement, idempotency_key=_key("revoke-2"))

        assert (first.changed, first.status) == (True, DONE)
        assert (second.changed, second.status) == (False, DONE)
        counts = holder_counts(connector, entitlement, page_size)
        assert counts[connector.login_for(ann)] == 0
        assert counts[connector.login_for(bob)] == 1  # the other holder is untouched

    def test_revoke_of_what_is_not_held_succeeds_unchanged(
        self, connector, entitlement, principals, page_size
    ):
        ann, stranger = principals[0], principals[-1]
        connector.grant(ann, entitlement, idempotency_key=_key("grant-ann"))
        before = holder_counts(connector, entitlement, page_size)

        result = connector.revoke(stranger, entitlement, idempotency_key=_key("revoke-stranger"))

        assert (result.changed, result.status) == (False, DONE)
        assert holder_counts(connector, entitlement, page_size) == before

    def test_grant_after_revoke_holds_again(self, connector, entitlement, principals, page_size):
        ann = principals[0]
        connector.grant(ann, entitlement, idempotency_key=_key("grant-1"))
        connector.revoke(ann, entitlement, idempotency_key=_key("revoke"))
        result = connector.grant(ann, entitlement, idempotency_key=_key("grant-2"))

        assert result.changed is True
        assert holder_counts(connector, entitlement, page_size)[connector.login_for(ann)] == 1

    # --- list_holders is what reconciliation reads ----------------------------------------
    def test_list_holders_agrees_with_what_was_granted_across_pages(
        self, connector, entitlement, principals, page_size
    ):
        assert len(principals) >= 5, "the contract needs at least five principals"
        assert page_size < len(principals), "page_size must force several pages"
        assert holder_counts(connector, entitlement, page_size) == Counter()

        for index, principal in enumerate(principals):
            connector.grant(principal, entitlement, idempotency_key=_key(f"grant-{index}"))
        expected = Counter(connector.login_for(p) for p in principals)
        assert len(expected) == len(principals), "distinct principals need distinct logins"

        assert holder_counts(connector, entitlement, page_size) == expected
        first = connector.list_holders(entitlement, page_size=page_size)
        assert 0 < len(first.holders) <= page_size
        assert first.next_cursor is not None  # more than one page

        connector.revoke(principals[1], entitlement, idempotency_key=_key("revoke"))
        del expected[connector.login_for(principals[1])]
        assert holder_counts(connector, entitlement, page_size) == expected

    def test_list_holders_walks_pages_without_overlap(
        self, connector, entitlement, principals, page_size
    ):
        for index, principal in enumerate(principals):
            connector.grant(principal, entitlement, idempotency_key=_key(f"grant-{index}"))
        seen: list[str] = []
        pages = 0
        cursor = None
        while True:
            page = connector.list_holders(entitlement, cursor=cursor, page_size=page_size)
            assert len(page.holders) <= page_size
            seen.extend(holder.principal for holder in page.holders)
            pages += 1
            assert pages <= len(principals) + 1, "the cursor never ends"
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert pages >= 2
        assert sorted(seen) == sorted(connector.login_for(p) for p in principals)

    # --- health -------------------------------------------------------------------------
    def test_health_of_a_reachable_system(self, connector):
        health = connector.health()

        assert isinstance(health, Health)
        assert health.ok is True
        assert health.detail
        if self.has_health_probe:
            assert health.latency_ms is not None and health.latency_ms >= 0
            assert "no health probe" not in health.detail
        else:
            assert "no health probe" in health.detail

    def test_health_of_an_unreachable_system(self, unreachable_connector):
        health = unreachable_connector.health()  # never raises

        assert isinstance(health, Health)
        assert health.detail
        if self.has_health_probe:
            assert health.ok is False

    # --- errors ---------------------------------------------------------------------------
    def test_unreachable_system_is_a_transient_error(
        self, unreachable_connector, entitlement, principals
    ):
        ann = principals[0]
        with pytest.raises(TransientError) as grant_error:
            unreachable_connector.grant(ann, entitlement, idempotency_key=_key("grant"))
        with pytest.raises(TransientError):
            unreachable_connector.revoke(ann, entitlement, idempotency_key=_key("revoke"))
        with pytest.raises(TransientError):
            unreachable_connector.list_holders(entitlement, page_size=2)
        assert grant_error.value.message
        assert grant_error.value.transient is True

    def test_permanent_failure_is_a_permanent_error(self, permanent_failure):
        with pytest.raises(PermanentError) as error:
            permanent_failure()

        assert not isinstance(error.value, TransientError)
        assert error.value.transient is False
        assert error.value.message

    def test_secrets_never_appear_in_errors_or_health(
        self,
        connector,
        unreachable_connector,
        permanent_failure,
        entitlement,
        principals,
        secrets,
    ):
        assert secrets, "name the secrets in play"
        texts: list[str] = []
        for call in (
            lambda: unreachable_connector.grant(
                principals[0], entitlement, idempotency_key=_key("g")
            ),
            lambda: unreachable_connector.revoke(
                principals[0], entitlement, idempotency_key=_key("r")
            ),
            lambda: unreachable_connector.list_holders(entitlement, page_size=2),
            permanent_failure,
        ):
            with pytest.raises(ConnectorError) as error:
                call()
            texts += [error.value.message, str(error.value), repr(error.value)]
        for health in (connector.health(), unreachable_connector.health()):
            texts.append(health.detail)

        for secret in secrets:
            assert secret
            for text in texts:
                assert secret not in text, f"a secret leaked into {text!r}"
