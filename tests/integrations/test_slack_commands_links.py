"""/access (search, request modal, pending), identity links (slack_link, the person's page,
audited), channel routes by command, and who may see what."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from access import services
from access.models import AccessRequest
from audit.models import AuditEvent
from integrations.models import SlackIdentity, SlackRoute
from tests.access.factories import grant_directly, make_entitlement, snapshot

from .conftest import MANAGER_SLACK, REQUESTER_SLACK
from .slack_fake import sign

pytestmark = pytest.mark.django_db


@pytest.fixture
def command(client):
    def post(user: str, text: str):
        body = urlencode(
            {
                "command": "/access",
                "text": text,
                "user_id": user,
                "team_id": "T0001",
                "trigger_id": "42.42.x",
                "channel_id": "D1",
            }
        ).encode()
        return client.generic(
            "POST",
            "/integrations/slack/commands",
            body,
            content_type="application/x-www-form-urlencoded",
            **sign(body),
        )

    return post


def modal_submission(user: str, *, entitlement: str, days: str, why: str) -> dict:
    return {
        "type": "view_submission",
        "user": {"id": user},
        "team": {"id": "T0001"},
        "view": {
            "callback_id": "tollgate_request",
            "private_metadata": json.dumps({"query": "billing"}),
            "state": {
                "values": {
                    "entitlement": {
                        "entitlement_input": {"selected_option": {"value": entitlement}}
                    },
                    "duration": {"duration_input": {"value": days}},
                    "why": {"why_input": {"value": why}},
                }
            },
        },
    }


def test_access_searches_the_catalog_and_opens_the_request_modal(requester, ent, slack, command):
    call_command("slack_link", requester.email, REQUESTER_SLACK)
    make_entitlement(ent.service, slug="hidden", requestable=False)
    response = command(REQUESTER_SLACK, "billing")
    assert response.status_code == 200 and response.json() == {}
    [opened] = slack.of("views.open")
    assert opened.args["trigger_id"] == "42.42.x"
    view = opened.args["view"]
    assert view["callback_id"] == "tollgate_request"
    options = view["blocks"][0]["element"]["options"]
    assert [o["value"] for o in options] == [str(ent.pk)]  # requestable only


def test_the_request_modal_submits_with_the_same_refusals_as_the_web(
    requester, ent, slack, interact
):
    call_command("slack_link", requester.email, REQUESTER_SLACK)
    too_long = interact(
        modal_submission(REQUESTER_SLACK, entitlement=str(ent.pk), days="999", why="debugging")
    )
    assert too_long.status_code == 200
    assert too_long.json()["response_action"] == "errors"
    assert "exceeds the maximum" in too_long.json()["errors"]["duration"]
    no_reason = interact(
        modal_submission(REQUESTER_SLACK, entitlement=str(ent.pk), days="", why=" ")
    )
    assert no_reason.json()["errors"] == {"why": "say why the access is needed"}
    assert AccessRequest.objects.count() == 0

    done = interact(
        modal_submission(REQUESTER_SLACK, entitlement=str(ent.pk), days="7", why="debugging")
    )
    assert done.json()["response_action"] == "update"
    req = AccessRequest.objects.get()
    assert (req.principal, req.requester, req.duration_days) == (requester, requester, 7)
    submitted = AuditEvent.objects.get(action="request.submitted")
    assert submitted.user_agent.startswith(f"slack user={REQUESTER_SLACK}")

    duplicate = interact(
        modal_submission(REQUESTER_SLACK, entitlement=str(ent.pk), days="7", why="again")
    )
    assert "already has an open request" in duplicate.json()["errors"]["entitlement"]
    assert AccessRequest.objects.count() == 1


def test_what_is_not_requestable_is_refused_as_on_the_web(requester, ent, slack, interact):
    call_command("slack_link", requester.email, REQUESTER_SLACK)
    hidden = make_entitlement(ent.service, slug="hidden", requestable=False)
    before = snapshot()
    answer = interact(
        modal_submission(REQUESTER_SLACK, entitlement=str(hidden.pk), days="", why="x")
    )
    assert answer.json() == {
        "response_action": "errors",
        "errors": {"entitlement": f"{hidden} is not requestable"},
    }
    assert snapshot() == before


def test_a_held_grant_makes_the_modal_request_an_extension(requester, ent, slack, interact):
    call_command("slack_link", requester.email, REQUESTER_SLACK)
    grant_directly(requester, ent)
    interact(modal_submission(REQUESTER_SLACK, entitlement=str(ent.pk), days="", why="longer"))
    assert AccessRequest.objects.get().kind == AccessRequest.Kind.EXTENSION


def test_access_pending_lists_what_waits_on_the_person(requester, manager, ent, slack, command):
    call_command("slack_link", manager.email, MANAGER_SLACK)
    call_command("slack_link", requester.email, REQUESTER_SLACK)
    req = services.access_request_submit(
        actor=requester, principal=requester, entitlement=ent, justification="x", duration_days=5
    )
    answer = command(MANAGER_SLACK, "pending").json()
    assert answer["response_type"] == "ephemeral"
    assert f"#{req.pk}>" in answer["text"] and "requester@example.com" in answer["text"]
    assert command(REQUESTER_SLACK, "pending").json()["text"] == "Nothing waits on your approval."


def test_an_unlinked_person_gets_an_ephemeral_refusal_from_the_command(ent, slack, command):
    answer = command("UNOBODY01", "billing").json()
    assert answer["response_type"] == "ephemeral"
    assert "not linked" in answer["text"]
    assert slack.calls == []


# --- links ----------------------------------------------------------------------------
def test_slack_link_links_audits_and_refuses_a_taken_or_malformed_id(requester, manager):
    call_command("slack_link", requester.email, REQUESTER_SLACK)
    link = SlackIdentity.objects.get(user=requester, removed_at=None)
    assert (link.slack_user_id, link.via) == (REQUESTER_SLACK, "command")
    event = AuditEvent.objects.get(action="slack.linked")
    assert (event.actor_label, event.after) == (
        "system:cli",
        {"slack_user_id": REQUESTER_SLACK, "via": "command"},
    )
    with pytest.raises(CommandError, match="already linked to requester@example.com"):
        call_command("slack_link", manager.email, REQUESTER_SLACK)
    with pytest.raises(CommandError, match="is not a Slack user id"):
        call_command("slack_link", manager.email, "bob")
    with pytest.raises(CommandError, match="no person"):
        call_command("slack_link", "ghost@example.com", "U0GHOST00")
    assert SlackIdentity.objects.count() == 1
    assert AuditEvent.objects.filter(action="slack.linked").count() == 1


def test_the_person_page_shows_the_link_and_its_owner_removes_it(requester, client):
    call_command("slack_link", requester.email, REQUESTER_SLACK)
    client.force_login(requester)
    page = client.get(reverse("integrations:slack-me"), follow=True)
    assert page.status_code == 200
    assert REQUESTER_SLACK in page.content.decode()
    response = client.post(reverse("integrations:slack-unlink", args=[requester.pk]))
    assert response.status_code == 302
    assert not SlackIdentity.objects.filter(user=requester, removed_at=None).exists()
    event = AuditEvent.objects.get(action="slack.unlinked")
    assert (event.actor_id, event.before) == (requester.pk, {"slack_user_id": REQUESTER_SLACK})


def test_another_person_gets_404_and_changes_nothing_but_security_may(
    requester, other_team_user, security, client
):
    call_command("slack_link", requester.email, REQUESTER_SLACK)
    client.force_login(other_team_user)
    url = reverse("integrations:slack-person", args=[requester.pk])
    assert client.get(url).status_code == 404
    assert client.post(reverse("integrations:slack-unlink", args=[requester.pk])).status_code == 404
    assert SlackIdentity.objects.filter(user=requester, removed_at=None).exists()
    client.force_login(security)
    assert REQUESTER_SLACK in client.get(url).content.decode()


def test_routes_are_validated_and_audited(org):
    with pytest.raises(CommandError, match="not a Slack channel id"):
        call_command("slack_route", "add", "general")
    with pytest.raises(CommandError, match="min_risk must be one of"):
        call_command("slack_route", "add", "CACCESS01", "--min-risk", "extreme")
    assert SlackRoute.objects.count() == 0
    call_command("slack_route", "add", "CACCESS01", "--team", org["payments"].slug)
    route = SlackRoute.objects.get()
    call_command("slack_route", "remove", str(route.pk))
    assert SlackRoute.objects.count() == 0
    actions = list(
        AuditEvent.objects.filter(action__startswith="slack.route").values_list("action", flat=True)
    )
    assert actions == ["slack.route_created", "slack.route_deleted"]


def test_only_admins_and_security_set_a_policys_chat_approval(ent, requester, security):
    from portal.core.errors import NotPermitted, ValidationError

    before = snapshot()
    with pytest.raises(NotPermitted):
        services.policy_chat_approval_set(actor=requester, policy=ent.policy, value="off")
    with pytest.raises(ValidationError):
        services.policy_chat_approval_set(actor=security, policy=ent.policy, value="maybe")
    assert snapshot() == before
    services.policy_chat_approval_set(actor=security, policy=ent.policy, value="off")
    ent.policy.refresh_from_db()
    assert ent.policy.chat_approval == "off"
    event = AuditEvent.objects.get(action="policy.updated")
    assert (event.before, event.after) == ({"chat_approval": "on"}, {"chat_approval": "off"})


def test_the_settings_menu_links_the_slack_page_only_when_slack_is_configured(
    requester, client, settings
):
    client.force_login(requester)
    settings.SLACK_BOT_TOKEN = settings.SLACK_SIGNING_SECRET = ""
    me = reverse("integrations:slack-me")
    assert me not in client.get("/").content.decode()
    settings.SLACK_BOT_TOKEN, settings.SLACK_SIGNING_SECRET = "xoxb-1", "secret"
    assert me in client.get("/").content.decode()
