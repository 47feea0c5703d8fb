"""The shared connector contract (tests/connectors/contract.py) on the LDAP connector, against
a real slapd over StartTLS: once for a groupOfNames group, once for a posixGroup."""

from __future__ import annotations

import pytest

from connectors.base import EntitlementRef
from tests.connectors.contract import ConnectorContract
from tests.connectors.ldap_support import add_people, ldap_connector, unreachable


@pytest.fixture
def connector(slapd):
    return ldap_connector(slapd)


@pytest.fixture
def principals(slapd):
    return add_people(slapd)


@pytest.fixture
def page_size():
    return 2


@pytest.fixture
def unreachable_connector(slapd):
    return unreachable(slapd)


@pytest.fixture
def permanent_failure(connector, principals):
    missing = EntitlementRef("directory", "ghost", config={"group": "no-such-group"})

    def call():
        connector.grant(principals[0], missing, idempotency_key="contract-permanent")

    return call


@pytest.fixture
def secrets(slapd):
    return [slapd.service_password, slapd.admin_password]


class TestLdapGroupOfNamesContract(ConnectorContract):
    @pytest.fixture
    def entitlement(self, slapd):
        slapd.add_group("readers")  # holds only the empty placeholder member
        return EntitlementRef("directory", "readers")


class TestLdapPosixGroupContract(ConnectorContract):
    @pytest.fixture
    def entitlement(self, slapd):
        slapd.add_group("shell-users", kind="posixGroup")
        return EntitlementRef("directory", "shell")
