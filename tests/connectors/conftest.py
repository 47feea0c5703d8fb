"""Fixtures for connector tests: fresh fake backends between tests."""

from __future__ import annotations

import pytest

from connectors.fake import FakeConnector


@pytest.fixture(autouse=True)
def _fresh_fake_backends():
    FakeConnector.reset_all()
    yield
    FakeConnector.reset_all()
