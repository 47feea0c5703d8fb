from __future__ import annotations

import pytest

from tests.access.factories import make_entitlement, make_policy, make_service

from .slack_fake import BOT_TOKEN, SIGNING_SECRET, FakeSlack, interaction_body, sign

MANAGER_SLACK = "UMANAGER1"
REQUESTER_SLACK = "UREQUEST1"
OTHER_SLACK = "UOTHER001"


@pytest.fixture
def slack(settings):
    fake = FakeSlack()
    fake.start()
    settings.SLACK_BOT_TOKEN = BOT_TOKEN
    settings.SLACK_SIGNING_SECRET = SIGNING_SECRET
    settings.SLACK_API_BASE_URL = fake.base_url
    settings.SLACK_TIMEOUT = 5
    settings.PORTAL_BASE_URL = "https://tollgate.example.com"
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def ent(org):
    """A medium-risk entitlement of a service without connector, approved by the manager."""
    return make_entitlement(
        make_service(org["search"]), risk="medium", policy=make_policy("mgr", [("manager", 1)])
    )


@pytest.fixture
def interact(client):
    """POST a signed interaction payload, as Slack would."""

    def post(payload: dict, *, timestamp: int | None = None, headers: dict | None = None):
        body = interaction_body(payload)
        signed = sign(body, timestamp=timestamp) if headers is None else headers
        return client.generic(
            "POST",
            "/integrations/slack/interactions",
            body,
            content_type="application/x-www-form-urlencoded",
            **signed,
        )

    return post
