"""Deciding from Slack: a signed block_actions payload calls the same decision service as the
web button, with the same refusals, and changes nothing when refused. Slack's Web API is a
local server (the SDK's base_url)."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.urls import reverse

from access import services
from access.models import AccessRequest, Approval, Grant
from audit.models import AuditEvent
from integrations.models import SlackMessage
from tests.access.factories import snapshot
from tests.conftest import make_user

from .conftest import MANAGER_SLACK, OTHER_SLACK, REQUESTER_SLACK
from .slack_fake import action_ids, block_action, reason_submission, text_of

pytestmark = pytest.mark.django_db


def submit(requester, ent, why="incident 42"):
    return services.access_request_submit(
        actor=requester, principal=requester, entitlement=ent, justification=why, duration_days=5
    )


def approve_payload(user: str, request_id) -> dict:
    return block_action(user=user, action_id="tollgate_approve", request_id=request_id)


def test_a_linked_manager_approves_from_slack_with_the_effect_of_the_web_button(
    requester, manager, ent, slack, interact, client, django_capture_on_commit_callbacks
):
    call_command("slack_link", manager.email, MANAGER_SLACK)
    by_slack = submit(requester, ent)
    other_ent = ent.__class__.objects.create(
        service=ent.service, slug="write", name="write", risk="medium", policy=ent.policy
    )
    by_web = submit(requester, other_ent)

    with django_capture_on_commit_callbacks(execute=True):
        response = interact(approve_payload(MANAGER_SLACK, by_slack.pk))
    assert response.status_code == 200, response.content
    assert response.json() == {"ok": True, "status": "approved"}
    client.force_login(manager)
    client.post(reverse("access:request-approve", args=[by_web.pk]), {"reason": ""})

    def effect(req):
        req.refresh_from_db()
        events = AuditEvent.objects.filter(
            target_type="access.accessrequest", target_id=str(req.pk)
        ).order_by("seq")
        grant = Grant.objects.get(request=req)
        return (
            req.status,
            list(Approval.objects.filter(request=req).values_list("approver_id", "decision")),
            [e.action for e in events if e.action != "slack.decision"],
            grant.status,
            grant.approved_by,
        )

    assert effect(by_slack) == effect(by_web)
    assert effect(by_slack)[0] == AccessRequest.Status.APPROVED
    slack_event = AuditEvent.objects.get(action="slack.decision", target_id=str(by_slack.pk))
    assert slack_event.actor_id == manager.pk
    assert slack_event.after == {
        "channel": "slack",
        "slack_user_id": MANAGER_SLACK,
        "slack_team_id": "T0001",
        "decision": "approve",
        "status": "approved",
    }
    given = AuditEvent.objects.get(action="request.approval_given", target_id=str(by_slack.pk))
    assert given.user_agent.startswith(f"slack user={MANAGER_SLACK} team=T0001")
    assert not AuditEvent.objects.filter(action="slack.decision", target_id=str(by_web.pk)).exists()


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_X_SLACK_REQUEST_TIMESTAMP": "1", "HTTP_X_SLACK_SIGNATURE": "v0=00"},
        {},
    ],
    ids=["forged", "unsigned"],
)
def test_a_forged_or_unsigned_payload_changes_nothing(
    requester, manager, ent, slack, interact, headers
):
    call_command("slack_link", manager.email, MANAGER_SLACK)
    req = submit(requester, ent)
    before = snapshot(req)
    response = interact(approve_payload(MANAGER_SLACK, req.pk), headers=headers)
    assert response.status_code == 401
    assert snapshot(req) == before
    assert slack.calls == []


def test_the_requester_cannot_approve_their_own_request_from_slack(
    requester, manager, ent, slack, interact
):
    call_command("slack_link", requester.email, REQUESTER_SLACK)
    req = submit(requester, ent)
    before = snapshot(req)
    response = interact(approve_payload(REQUESTER_SLACK, req.pk))
    assert response.status_code == 403
    assert response.json()["reason"] == "own-request"
    assert snapshot(req) == before
    [told] = slack.of("chat.postEphemeral")
    assert told.args["user"] == REQUESTER_SLACK
    assert "nobody approves their own request" in told.args["text"]


def test_someone_who_is_not_an_approver_is_refused(
    requester, manager, other_team_user, ent, slack, interact
):
    call_command("slack_link", other_team_user.email, OTHER_SLACK)
    req = submit(requester, ent)
    before = snapshot(req)
    response = interact(approve_payload(OTHER_SLACK, req.pk))
    assert response.status_code == 403
    assert response.json()["reason"] == "not-an-approver"
    assert snapshot(req) == before


def test_an_unlinked_slack_user_is_refused_with_an_ephemeral_message(
    requester, manager, ent, slack, interact
):
    req = submit(requester, ent)
    before = snapshot(req)
    response = interact(approve_payload("UNOBODY01", req.pk))
    assert response.status_code == 403
    assert response.json()["reason"] == "slack-user-not-linked"
    assert snapshot(req) == before
    [told] = slack.of("chat.postEphemeral")
    assert told.args["user"] == "UNOBODY01"
    assert told.args["channel"] == "D1"
    assert "not linked" in told.args["text"]
    # The bot never links a clicking stranger by itself.
    assert slack.of("users.lookupByEmail") == []


def test_a_removed_link_no_longer_decides(requester, manager, ent, slack, interact):
    call_command("slack_link", manager.email, MANAGER_SLACK)
    call_command("slack_link", manager.email, "--remove")
    req = submit(requester, ent)
    before = snapshot(req)
    assert interact(approve_payload(MANAGER_SLACK, req.pk)).status_code == 403
    assert snapshot(req) == before


def test_a_leaver_linked_in_slack_is_refused(requester, manager, ent, slack, interact):
    call_command("slack_link", manager.email, MANAGER_SLACK)
    req = submit(requester, ent)
    manager.is_active = False
    manager.save(update_fields=["is_active"])
    before = snapshot(req)
    response = interact(approve_payload(MANAGER_SLACK, req.pk))
    assert response.status_code == 403
    assert response.json()["reason"] == "slack-user-not-linked"
    assert snapshot(req) == before


def test_a_decided_request_is_answered_409_without_change(requester, manager, ent, slack, interact):
    call_command("slack_link", manager.email, MANAGER_SLACK)
    req = submit(requester, ent)
    services.access_request_deny(actor=manager, request_id=req.pk, reason="not now")
    before = snapshot(req)
    response = interact(approve_payload(MANAGER_SLACK, req.pk))
    assert response.status_code == 409
    assert response.json()["reason"] == "already-decided"
    assert snapshot(req) == before
    req.refresh_from_db()
    assert req.status == AccessRequest.Status.DENIED


def test_deny_opens_a_reason_modal_and_its_submission_denies(
    requester, manager, ent, slack, interact
):
    call_command("slack_link", manager.email, MANAGER_SLACK)
    req = submit(requester, ent)
    before = snapshot(req)
    response = interact(
        block_action(user=MANAGER_SLACK, action_id="tollgate_deny", request_id=req.pk)
    )
    assert response.status_code == 200
    assert snapshot(req) == before  # opening the form decides nothing
    [opened] = slack.of("views.open")
    assert opened.args["trigger_id"] == "1337.42.abcd"
    assert opened.args["view"]["callback_id"] == "tollgate_reason"

    empty = interact(
        reason_submission(user=MANAGER_SLACK, request_id=req.pk, decision="deny", reason=" ")
    )
    assert empty.status_code == 200
    assert empty.json() == {
        "response_action": "errors",
        "errors": {"reason": "a denial needs a reason"},
    }
    assert snapshot(req) == before

    done = interact(
        reason_submission(user=MANAGER_SLACK, request_id=req.pk, decision="deny", reason="no need")
    )
    assert done.status_code == 200 and done.json() == {}
    req.refresh_from_db()
    assert (req.status, req.decision_reason) == ("denied", "no need")
    event = AuditEvent.objects.get(action="slack.decision", target_id=str(req.pk))
    assert event.after["decision"] == "deny" and event.reason == "no need"


def test_a_policy_that_asks_for_a_reason_opens_the_modal_for_approvals_too(
    requester, manager, ent, slack, interact
):
    services.policy_chat_approval_set(actor=_admin(), policy=ent.policy, value="reason")
    call_command("slack_link", manager.email, MANAGER_SLACK)
    req = submit(requester, ent)
    before = snapshot(req)
    assert interact(approve_payload(MANAGER_SLACK, req.pk)).status_code == 200
    assert snapshot(req) == before
    [opened] = slack.of("views.open")
    assert (
        opened.args["view"]["private_metadata"]
        == f'{{"request_id": {req.pk}, "decision": "approve"}}'
    )
    empty = interact(
        reason_submission(user=MANAGER_SLACK, request_id=req.pk, decision="approve", reason="")
    )
    assert empty.json()["response_action"] == "errors"
    assert snapshot(req) == before
    interact(
        reason_submission(
            user=MANAGER_SLACK, request_id=req.pk, decision="approve", reason="on call"
        )
    )
    req.refresh_from_db()
    assert (req.status, req.decision_reason) == ("approved", "on call")


def _admin():
    from accounts.models import PlatformRole

    return make_user("chat-admin@example.com", roles=[PlatformRole.PLATFORM_ADMIN])


def test_a_policy_with_chat_approval_off_refuses_a_click_and_sends_no_buttons(
    requester, manager, ent, slack, interact, django_capture_on_commit_callbacks
):
    services.policy_chat_approval_set(actor=_admin(), policy=ent.policy, value="off")
    call_command("slack_link", manager.email, MANAGER_SLACK)
    with django_capture_on_commit_callbacks(execute=True):
        req = submit(requester, ent)
    [dm] = slack.of("chat.postMessage")
    assert dm.args["channel"] == MANAGER_SLACK
    assert action_ids(dm.args["blocks"]) == ["tollgate_open"]  # the link only
    assert "web page only" in text_of(dm.args["blocks"])
    before = snapshot(req)
    response = interact(approve_payload(MANAGER_SLACK, req.pk))
    assert response.status_code == 403
    assert response.json()["reason"] == "chat-approval-off"
    assert snapshot(req) == before


def test_powerful_people_decide_on_the_web_when_mfa_is_required(
    requester, security, org, slack, interact, settings
):
    from tests.access.factories import make_entitlement, make_policy, make_service

    settings.REQUIRE_MFA_FOR_ADMINS = True
    sec_ent = make_entitlement(
        make_service(org["search"], slug="vault"), policy=make_policy("sec", [("security", 1)])
    )
    call_command("slack_link", security.email, "USECURITY")
    req = submit(requester, sec_ent)
    before = snapshot(req)
    response = interact(approve_payload("USECURITY", req.pk))
    assert response.status_code == 403
    assert "second factor" in response.json()["error"]
    assert snapshot(req) == before


def test_bad_payloads_are_refused_with_400_and_change_nothing(
    requester, manager, ent, slack, interact
):
    call_command("slack_link", manager.email, MANAGER_SLACK)
    req = submit(requester, ent)
    before = snapshot(req)
    response = interact(approve_payload(MANAGER_SLACK, "12; DROP"))
    assert response.status_code == 400
    assert response.json()["reason"] == "bad-payload"
    missing = approve_payload(MANAGER_SLACK, req.pk)
    del missing["user"]
    assert interact(missing).status_code == 400
    assert snapshot(req) == before
    assert SlackMessage.objects.count() == 0


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "block_actions", "user": "UMANAGER1", "actions": "x"},
        {
            "type": "block_actions",
            "user": {"id": 7},
            "actions": [{"action_id": "tollgate_approve"}],
        },
        {
            "type": "view_submission",
            "user": {"id": "UMANAGER1"},
            "view": {"callback_id": "tollgate_reason", "private_metadata": "[1]"},
        },
        ["not", "an", "object"],
    ],
    ids=["user-is-a-string", "user-id-not-a-string", "metadata-not-an-object", "payload-a-list"],
)
def test_malformed_payloads_answer_400_never_500(slack, interact, payload, manager):
    call_command("slack_link", manager.email, MANAGER_SLACK)
    before = snapshot()
    response = interact(payload)
    assert response.status_code == 400, response.content
    assert snapshot() == before
