"""Slack's request signature: valid, bad, stale, replayed (also after Redis lost everything),
and an unconfigured workspace. The clock is frozen (tests/conftest.py)."""

from __future__ import annotations

import time

import pytest
from django.core.cache import cache
from django.core.management import call_command

from access import services
from access.models import AccessRequest
from integrations.models import SlackSeenSignature
from integrations.slack import signature
from tests.access.factories import snapshot

from .conftest import MANAGER_SLACK
from .slack_fake import block_action, interaction_body, sign

pytestmark = pytest.mark.django_db


@pytest.fixture
def pending(requester, manager, ent, slack):
    call_command("slack_link", manager.email, MANAGER_SLACK)
    return services.access_request_submit(
        actor=requester, principal=requester, entitlement=ent, justification="x", duration_days=5
    )


def approve(request_id):
    return block_action(user=MANAGER_SLACK, action_id="tollgate_approve", request_id=request_id)


def test_a_valid_signature_is_accepted(pending, interact):
    assert interact(approve(pending.pk)).status_code == 200
    pending.refresh_from_db()
    assert pending.status == AccessRequest.Status.APPROVED


def test_a_signature_under_another_secret_is_refused(pending, client):
    body = interaction_body(approve(pending.pk))
    before = snapshot(pending)
    response = client.generic(
        "POST",
        "/integrations/slack/interactions",
        body,
        content_type="application/x-www-form-urlencoded",
        **sign(body, secret="not-the-secret"),
    )
    assert response.status_code == 401
    assert response.json()["error"] == "bad signature"
    assert snapshot(pending) == before


def test_a_body_changed_after_signing_is_refused(pending, client):
    body = interaction_body(approve(pending.pk))
    headers = sign(body)
    tampered = interaction_body(approve(pending.pk + 1))
    response = client.generic(
        "POST",
        "/integrations/slack/interactions",
        tampered,
        content_type="application/x-www-form-urlencoded",
        **headers,
    )
    assert response.status_code == 401


@pytest.mark.parametrize("age", [301, 3600, -301])
def test_a_timestamp_more_than_five_minutes_away_is_refused(pending, interact, age):
    before = snapshot(pending)
    response = interact(approve(pending.pk), timestamp=int(time.time()) - age)
    assert response.status_code == 401
    assert response.json()["error"].startswith("stale timestamp")
    assert snapshot(pending) == before


def test_a_timestamp_within_five_minutes_is_accepted(pending, interact):
    assert interact(approve(pending.pk), timestamp=int(time.time()) - 290).status_code == 200


def test_a_replay_is_refused_even_after_redis_lost_everything(pending, client, settings):
    payload = approve(pending.pk)
    body = interaction_body(payload)
    headers = sign(body)

    def send():
        return client.generic(
            "POST",
            "/integrations/slack/interactions",
            body,
            content_type="application/x-www-form-urlencoded",
            **headers,
        )

    services.access_request_cancel(actor=pending.requester, request_id=pending.pk)
    first = send()
    assert first.status_code == 409  # accepted as Slack's, refused as decided
    cache.clear()  # a Redis restarted empty keeps nothing: the guard is in PostgreSQL
    before = snapshot(pending)
    again = send()
    assert again.status_code == 401
    assert again.json()["error"] == "replayed request (signature already seen)"
    assert snapshot(pending) == before
    assert SlackSeenSignature.objects.count() == 1


def test_seen_signatures_are_pruned_only_once_they_cannot_pass_the_window(pending, interact, clock):
    interact(approve(pending.pk))
    assert signature.seen_prune() == 0
    clock.shift(5 * 60 + 30)
    assert signature.seen_prune() == 0
    clock.shift(60)
    assert signature.seen_prune() == 1


def test_the_slash_command_endpoint_is_signed_too(pending, client):
    body = b"command=%2Faccess&text=pending&user_id=" + MANAGER_SLACK.encode()
    refused = client.generic(
        "POST",
        "/integrations/slack/commands",
        body,
        content_type="application/x-www-form-urlencoded",
        **sign(body, secret="wrong"),
    )
    assert refused.status_code == 401
    ok = client.generic(
        "POST",
        "/integrations/slack/commands",
        body,
        content_type="application/x-www-form-urlencoded",
        **sign(body),
    )
    assert ok.status_code == 200
    assert f"#{pending.pk}" in ok.json()["text"]


def test_an_unconfigured_workspace_refuses_everything_and_sends_nothing(
    requester, manager, ent, interact, settings, django_capture_on_commit_callbacks
):
    settings.SLACK_SIGNING_SECRET = ""
    settings.SLACK_BOT_TOKEN = ""
    from integrations.models import SlackEvent, SlackMessage

    with django_capture_on_commit_callbacks(execute=True):
        req = services.access_request_submit(
            actor=requester,
            principal=requester,
            entitlement=ent,
            justification="x",
            duration_days=5,
        )
    assert SlackEvent.objects.count() == 0 and SlackMessage.objects.count() == 0
    response = interact(approve(req.pk))
    assert response.status_code == 401
    assert "not configured" in response.json()["error"]


def test_get_is_refused_like_any_unsigned_call(client, slack):
    assert client.get("/integrations/slack/interactions").status_code == 401
    assert client.get("/integrations/slack/commands").status_code == 401


def test_an_oversized_body_is_refused_before_anything_is_read(pending, client):
    body = interaction_body(approve(pending.pk)) + b"&pad=" + b"x" * 70_000
    response = client.generic(
        "POST",
        "/integrations/slack/interactions",
        body,
        content_type="application/x-www-form-urlencoded",
        **sign(body),
    )
    assert response.status_code == 401
    assert response.json()["error"] == "body too large"
    assert SlackSeenSignature.objects.count() == 0
