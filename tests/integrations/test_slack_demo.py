"""The issue's "done when": the demo manager, linked with slack_link, approves the demo
engineer's request by a signed block_actions payload, with exactly the effect of the web
button; a forged or stale payload changes nothing."""

from __future__ import annotations

import io
import random
import time

import pytest
from django.core.management import call_command

from access import services
from access.models import AccessRequest, ApprovalPolicy
from accounts.models import User
from audit.models import AuditEvent
from demo.steps import access as demo
from demo.steps.accounts import seed_people
from portal.core.errors import NotPermitted
from tests.access.factories import snapshot

from .slack_fake import block_action, sign

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


def test_the_demo_manager_approves_the_engineers_request_from_slack(monkeypatch, slack, interact):
    monkeypatch.setattr(demo, "HISTORY_REQUESTS", 10)
    out = io.StringIO()
    seed_people(stdout=out, rng=random.Random(7))
    demo.seed_access(stdout=out, rng=random.Random(7))
    assert ApprovalPolicy.objects.get(slug="critical-access").chat_approval == "off"
    engineer = User.objects.get(email="engineer@tollgate.test")
    manager = User.objects.get(email="manager@tollgate.test")
    call_command("slack_link", manager.email, "UDEMOMGR1", stdout=out)
    req = AccessRequest.objects.get(
        principal=engineer, status="pending", entitlement__service__slug="elasticsearch-prod"
    )
    payload = block_action(user="UDEMOMGR1", action_id="tollgate_approve", request_id=req.pk)

    before = snapshot(req)
    forged = interact(payload, headers=sign(b"something else"))
    stale = interact(payload, timestamp=int(time.time()) - 600)
    assert (forged.status_code, stale.status_code) == (401, 401)
    assert snapshot(req) == before

    response = interact(payload)
    assert response.status_code == 200, response.content
    req.refresh_from_db()
    assert (req.status, req.current_stage) == ("pending", 1)  # as the web button: stage 2 next
    given = AuditEvent.objects.get(action="request.approval_given", target_id=str(req.pk))
    assert given.actor_id == manager.pk
    assert (
        AuditEvent.objects.get(action="slack.decision", target_id=str(req.pk)).after[
            "slack_user_id"
        ]
        == "UDEMOMGR1"
    )
    # Clicking again is refused by the service, as a second web click is (one person, one stage).
    again = interact(payload, timestamp=int(time.time()) + 1)
    assert again.status_code == 403
    assert again.json()["reason"] == "approved-another-stage"
    with pytest.raises(NotPermitted) as web:
        services.access_request_approve(actor=manager, request_id=req.pk)
    assert web.value.reason_code == "approved-another-stage"
