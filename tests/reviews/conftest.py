from __future__ import annotations

import pytest

from access.models import Grant
from connectors.fake import FakeConnector
from tests.access.factories import grant_directly, make_entitlement
from tests.access.sync_support import fake_service
from tests.conftest import make_user


@pytest.fixture(autouse=True)
def _fresh_fakes():
    FakeConnector.reset_all()
    yield
    FakeConnector.reset_all()


@pytest.fixture
def billing(org):
    """A service owned by the search team, provisioned by the fake connector."""
    return fake_service(org["search"], "billing")


@pytest.fixture
def backend(billing):
    return FakeConnector.backend("billing")


@pytest.fixture
def read(billing):
    return make_entitlement(billing, slug="read", risk="high")


@pytest.fixture
def director(org):
    return make_user("director@example.com", team=org["platform"])


@pytest.fixture
def peer(org, manager):
    return make_user("peer@example.com", team=org["payments"], manager=manager)


@pytest.fixture
def held(requester, peer, manager, service_owner, read, backend) -> dict[str, Grant]:
    """Active grants of billing/read, mirrored in the fake backend."""
    out = {}
    for who in (requester, peer, manager, service_owner):
        out[who.email] = grant_directly(who, read, days=90)
        backend.set_holder(who.email, "read")
    return out
