"""Manual connector: every change waits for a person."""

from __future__ import annotations

import pytest

from connectors.base import PENDING_MANUAL, ConfigError, EntitlementRef, NotSupported, PrincipalRef
from connectors.manual import ManualConnector, ManualTaskSpec

ANN = PrincipalRef("ann@example.com")
ADMIN = EntitlementRef("ledger", "admin")


@pytest.mark.sqlite
def test_grant_and_revoke_are_pending_manual_and_repeatable():
    conn = ManualConnector({"group": "ledger-ops", "instructions": "Use the ledger console."})
    first = conn.grant(ANN, ADMIN, idempotency_key="job-1")
    again = conn.grant(ANN, ADMIN, idempotency_key="job-1")
    revoke = conn.revoke(ANN, ADMIN, idempotency_key="job-2")

    assert first == again
    assert (first.changed, first.status, first.done) == (False, PENDING_MANUAL, False)
    assert first.detail == "Grant ledger/admin to ann@example.com (by ledger-ops)"
    assert (revoke.status, revoke.detail) == (
        PENDING_MANUAL,
        "Revoke ledger/admin from ann@example.com (by ledger-ops)",
    )
    assert conn.task_for("grant", ANN, ADMIN) == ManualTaskSpec(
        group="ledger-ops",
        title="Grant ledger/admin to ann@example.com",
        instructions="Use the ledger console.",
        remind_after_hours=24,
    )


def test_manual_connector_cannot_see_downstream():
    conn = ManualConnector({"group": "ledger-ops", "remind_after_hours": 4})
    description = conn.describe()
    assert (
        description.manual,
        description.supports_list_holders,
        description.supports_last_used,
    ) == (True, False, False)
    with pytest.raises(NotSupported, match="cannot list holders"):
        conn.list_holders()
    with pytest.raises(NotSupported, match="does not report last use"):
        conn.last_used(ANN)
    assert conn.task_for("revoke", ANN, ADMIN).remind_after_hours == 4


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "missing config key"),
        ({"group": 7}, "group must be"),
        ({"group": "g", "remind_after_hours": 0}, "remind_after_hours"),
    ],
)
def test_manual_config_is_checked(config, message):
    with pytest.raises(ConfigError, match=message):
        ManualConnector(config)
