"""Messages stay true: approvers get a DM when a stage waits on them; after any decision (Slack,
web, expiry, cancellation) every copy is updated in place; the requester is told the outcome and
that the access is active; Slack being down never blocks or undoes a decision."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse

from access import services
from access.models import AccessRequest
from audit.models import AuditEvent
from integrations import tasks
from integrations.models import SlackIdentity, SlackMessage
from integrations.slack import outbox
from tests.access.factories import grant_directly, make_entitlement, make_policy, make_service
from tests.access.sync_support import fresh_fakes  # noqa: F401  (fixture)
from tests.conftest import make_user

from .conftest import MANAGER_SLACK, REQUESTER_SLACK
from .slack_fake import action_ids, block_action, button_values, text_of

pytestmark = pytest.mark.django_db

OWNER_SLACK = "UOWNER001"


@pytest.fixture
def people(requester, manager, slack):
    slack.emails = {manager.email: MANAGER_SLACK, requester.email: REQUESTER_SLACK}
    return {"requester": requester, "manager": manager}


def submit(requester, ent, why="incident <42> & more"):
    return services.access_request_submit(
        actor=requester, principal=requester, entitlement=ent, justification=why, duration_days=5
    )


def test_the_approver_gets_a_dm_with_the_context_and_buttons(
    people, ent, org, slack, django_capture_on_commit_callbacks
):
    peer = make_user("peer@example.com", team=org["payments"], name="Pat Peer")
    grant_directly(peer, ent)
    with django_capture_on_commit_callbacks(execute=True):
        req = submit(people["requester"], ent)
    [lookup] = slack.of("users.lookupByEmail")
    assert lookup.args == {"email": people["manager"].email}
    assert lookup.token == "xoxb-test-token"
    link = SlackIdentity.objects.get(user=people["manager"])
    assert (link.slack_user_id, link.via) == (MANAGER_SLACK, "lookup")
    assert AuditEvent.objects.filter(action="slack.linked", actor_label="system:slack").count() == 1

    [dm] = slack.of("chat.postMessage")
    assert dm.args["channel"] == MANAGER_SLACK
    assert button_values(dm.args["blocks"]) == {
        "tollgate_approve": str(req.pk),
        "tollgate_deny": str(req.pk),
        "tollgate_open": "",
    }
    text = text_of(dm.args["blocks"])
    assert "requester@example.com" in text
    assert str(ent) in text
    assert "*Why:* incident &lt;42&gt; &amp; more" in text  # mrkdwn escaped: no forged links
    assert "*For:* 5 days" in text and "*Risk:* Medium" in text
    assert "*Stage:* 1 of 1" in text
    assert "*Peers who hold it:* Pat Peer" in text
    url = [e for b in dm.args["blocks"] if b["type"] == "actions" for e in b["elements"]][-1]["url"]
    assert url == f"https://tollgate.example.com/requests/{req.pk}/"
    row = SlackMessage.objects.get(request=req, kind="approver")
    assert (row.channel, row.ts, row.status, row.sent, row.wanted) == (
        "DMANAGER1",
        "1700000000.000001",
        "done",
        1,
        1,
    )


def test_a_web_decision_updates_the_message_in_place_and_tells_the_requester(
    people, ent, slack, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        req = submit(people["requester"], ent)
    slack.clear()
    client.force_login(people["manager"])
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("access:request-approve", args=[req.pk]), {"reason": "ok"})
    req.refresh_from_db()
    assert req.status == AccessRequest.Status.APPROVED
    [update] = slack.of("chat.update")
    assert (update.args["channel"], update.args["ts"]) == ("DMANAGER1", "1700000000.000001")
    assert action_ids(update.args["blocks"]) == ["tollgate_open"]  # no live buttons
    assert f"*Approved* by {people['manager'].name}" in text_of(update.args["blocks"])
    to_requester = [c for c in slack.of("chat.postMessage") if c.args["channel"] == REQUESTER_SLACK]
    texts = sorted(c.args["text"] for c in to_requester)
    assert texts == [
        f"Your access to {ent} is active until 22 Jun 2026.",
        f"Your request #{req.pk} for {ent} is approved.",
    ]


def test_a_slack_approval_of_one_stage_moves_the_buttons_to_the_next_stage(
    people, org, slack, interact, django_capture_on_commit_callbacks
):
    owner = make_user("owner2@example.com", team=org["search"])
    slack.emails[owner.email] = OWNER_SLACK
    ent = make_entitlement(
        make_service(org["search"], slug="two"),
        risk="high",
        policy=make_policy("two", [("manager", 1), ("service_owner", 1)]),
    )
    with django_capture_on_commit_callbacks(execute=True):
        req = submit(people["requester"], ent)
    slack.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = interact(
            block_action(user=MANAGER_SLACK, action_id="tollgate_approve", request_id=req.pk)
        )
    assert response.json() == {"ok": True, "status": "pending"}
    [update] = slack.of("chat.update")
    assert update.args["channel"] == "DMANAGER1"
    assert action_ids(update.args["blocks"]) == ["tollgate_open"]
    assert "*Stage:* 2 of 2" in text_of(update.args["blocks"])
    [new] = slack.of("chat.postMessage")
    assert new.args["channel"] == OWNER_SLACK
    assert action_ids(new.args["blocks"]) == ["tollgate_approve", "tollgate_deny", "tollgate_open"]


@pytest.mark.parametrize("how", ["cancel", "expire"])
def test_cancellation_and_expiry_update_every_copy(
    people, ent, slack, how, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        req = submit(people["requester"], ent)
    slack.clear()
    with django_capture_on_commit_callbacks(execute=True):
        if how == "cancel":
            services.access_request_cancel(actor=people["requester"], request_id=req.pk)
        else:
            services.access_request_expire(request_id=req.pk)
    [update] = slack.of("chat.update")
    assert action_ids(update.args["blocks"]) == ["tollgate_open"]
    label = {"cancel": "Cancelled", "expire": "Expired"}[how]
    assert f"*{label}*" in text_of(update.args["blocks"])


def test_slack_down_never_blocks_a_decision_and_the_update_is_retried(
    people, ent, slack, clock, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        req = submit(people["requester"], ent)
    slack.clear()
    slack.down = True
    with django_capture_on_commit_callbacks(execute=True):
        services.access_request_approve(actor=people["manager"], request_id=req.pk)
    req.refresh_from_db()
    assert req.status == AccessRequest.Status.APPROVED  # the decision stands
    row = SlackMessage.objects.get(request=req, kind="approver")
    assert (row.status, row.attempts, row.sent, row.wanted) == ("pending", 1, 1, 2)
    assert "503" in row.last_error or "service" in row.last_error
    assert row.next_attempt_at > row.updated_at  # backing off
    assert slack.of("chat.update")  # it was tried

    slack.down = False
    slack.clear()
    tasks.slack_sweep()  # not due yet: nothing is sent
    assert slack.of("chat.update") == []
    clock.shift(timedelta(minutes=2))
    tasks.slack_sweep()
    [update] = slack.of("chat.update")
    assert update.args["ts"] == "1700000000.000001"
    assert "*Approved*" in text_of(update.args["blocks"])
    row.refresh_from_db()
    assert (row.status, row.attempts, row.sent) == ("done", 0, 2)


def test_a_message_that_keeps_failing_is_marked_failed_and_audited(
    people, ent, slack, clock, django_capture_on_commit_callbacks
):
    slack.down = True
    with django_capture_on_commit_callbacks(execute=True):
        req = submit(people["requester"], ent)
    # lookupByEmail fails too: the manager's DM is retried, never posted
    row = SlackMessage.objects.get(request=req, kind="approver")
    for _ in range(outbox.MAX_ATTEMPTS):
        clock.shift(timedelta(hours=1, minutes=1))
        tasks.slack_sweep()
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("failed", outbox.MAX_ATTEMPTS)
    event = AuditEvent.objects.get(action="slack.message_failed")
    assert event.after["request"] == req.pk
    req.refresh_from_db()
    assert req.status == AccessRequest.Status.PENDING


def test_a_person_not_in_the_workspace_is_skipped(
    requester, manager, ent, slack, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        req = submit(requester, ent)
    row = SlackMessage.objects.get(request=req, kind="approver")
    assert row.status == "skipped"
    assert slack.of("chat.postMessage") == []
    assert not SlackIdentity.objects.exists()


def test_a_removed_link_is_not_made_again_by_email(
    people, ent, slack, django_capture_on_commit_callbacks
):
    call_command("slack_link", people["manager"].email, MANAGER_SLACK)
    call_command("slack_link", people["manager"].email, "--remove")
    with django_capture_on_commit_callbacks(execute=True):
        submit(people["requester"], ent)
    assert slack.of("users.lookupByEmail") == []
    assert [c for c in slack.of("chat.postMessage") if c.args["channel"] == MANAGER_SLACK] == []


def test_routes_post_to_channels_and_a_click_there_decides_with_the_same_rules(
    people, ent, org, slack, interact, django_capture_on_commit_callbacks
):
    call_command("slack_route", "add", "CACCESS01", "--service", ent.service.slug)
    call_command("slack_route", "add", "CCRIT0001", "--min-risk", "critical")
    call_command("slack_route", "add", "CPAYMENTS", "--team", org["payments"].slug)
    with django_capture_on_commit_callbacks(execute=True):
        req = submit(people["requester"], ent)
    channels = sorted(c.args["channel"] for c in slack.of("chat.postMessage"))
    assert channels == ["CACCESS01", "CPAYMENTS", MANAGER_SLACK]
    post = next(c for c in slack.of("chat.postMessage") if c.args["channel"] == "CACCESS01")
    assert action_ids(post.args["blocks"]) == ["tollgate_approve", "tollgate_deny", "tollgate_open"]
    slack.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = interact(
            block_action(
                user=MANAGER_SLACK,
                action_id="tollgate_approve",
                request_id=req.pk,
                channel="CACCESS01",
            )
        )
    assert response.status_code == 200
    updated = sorted(c.args["channel"] for c in slack.of("chat.update"))
    assert updated == ["CACCESS01", "CPAYMENTS", "DMANAGER1"]
    assert AuditEvent.objects.filter(action="slack.route_created").count() == 3


def test_a_lost_event_is_picked_up_by_the_sweeper(people, ent, slack, clock):
    # No on_commit callbacks run here (the broker "lost" the message): the event row waits.
    req = submit(people["requester"], ent)
    assert slack.calls == []
    clock.shift(timedelta(seconds=31))
    tasks.slack_sweep()
    [dm] = slack.of("chat.postMessage")
    assert dm.args["channel"] == MANAGER_SLACK
    assert SlackMessage.objects.get(request=req, kind="approver").status == "done"


@pytest.mark.usefixtures("fresh_fakes")
def test_the_requester_hears_active_only_once_the_connector_provisioned_it(
    people, org, slack, django_capture_on_commit_callbacks
):
    from access.models import SyncJob
    from access.sync import outbox as sync_outbox
    from connectors.fake import FakeConnector
    from tests.access.sync_support import auto_entitlement, fake_service

    service = fake_service(org["search"], "billing")
    ent = auto_entitlement(service, people["requester"])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        submit(people["requester"], ent)
    job = SyncJob.objects.get()
    for callback in callbacks:  # the Slack events and notifications, not the provisioning job
        if "_enqueue_on_commit" not in callback.__qualname__:
            callback()
    texts = [c.args["text"] for c in slack.of("chat.postMessage")]
    assert texts == [f"Your request #{job.grant.request_id} for {ent} is approved."]
    slack.clear()
    with django_capture_on_commit_callbacks(execute=True):
        sync_outbox.enqueue_job(job.pk)
    assert FakeConnector.backend("billing").holds("requester@example.com", "read")
    [active] = slack.of("chat.postMessage")
    assert active.args["channel"] == REQUESTER_SLACK
    assert active.args["text"].startswith(f"Your access to {ent} is active until ")


def test_the_recommendation_score_shown_to_the_approver_is_in_the_dm(
    people, ent, slack, monkeypatch, django_capture_on_commit_callbacks
):
    """The score comes from a request panel (the recommend app's, here a stand-in) that the
    approver may see; a panel the approver may not see adds nothing."""
    from types import SimpleNamespace

    from access import panels

    def stand_in(*, request, viewer):
        if viewer != people["manager"]:
            return None
        return panels.Panel(
            "Recommendation", "x.html", {"score": SimpleNamespace(probability=0.87)}
        )

    monkeypatch.setattr(panels, "REQUEST_PANELS", [stand_in])
    with django_capture_on_commit_callbacks(execute=True):
        submit(people["requester"], ent)
    [dm] = slack.of("chat.postMessage")
    assert "*Recommendation:* 87% likely to be approved" in text_of(dm.args["blocks"])


def test_a_delegate_of_the_approver_gets_the_dm_and_decides_from_it(
    people, org, ent, slack, interact, django_capture_on_commit_callbacks
):
    from django.utils import timezone

    deputy = make_user("deputy@example.com", team=org["payments"])
    slack.emails[deputy.email] = "UDEPUTY01"
    today = timezone.localdate()
    services.delegation_create(
        actor=people["manager"], delegate=deputy, starts_on=today, ends_on=today
    )
    with django_capture_on_commit_callbacks(execute=True):
        req = submit(people["requester"], ent)
    assert sorted(c.args["channel"] for c in slack.of("chat.postMessage")) == [
        "UDEPUTY01",
        MANAGER_SLACK,
    ]
    with django_capture_on_commit_callbacks(execute=True):
        response = interact(
            block_action(user="UDEPUTY01", action_id="tollgate_approve", request_id=req.pk)
        )
    assert response.json() == {"ok": True, "status": "approved"}
    given = AuditEvent.objects.get(action="request.approval_given", target_id=str(req.pk))
    assert (given.actor_id, given.after["on_behalf_of"]) == (deputy.pk, people["manager"].pk)


def test_an_api_denial_updates_the_message_too(
    people, ent, slack, client, django_capture_on_commit_callbacks
):
    from tokens.services import api_token_create

    with django_capture_on_commit_callbacks(execute=True):
        req = submit(people["requester"], ent)
    slack.clear()
    _token, plaintext = api_token_create(
        actor=people["manager"], user=people["manager"], name="script"
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/api/v1/requests/{req.pk}/deny",
            '{"reason": "not this quarter"}',
            content_type="application/json",
            headers={"Authorization": f"Bearer {plaintext}"},
        )
    assert response.status_code == 200, response.content
    [update] = slack.of("chat.update")
    assert action_ids(update.args["blocks"]) == ["tollgate_open"]
    assert ": not this quarter" in text_of(update.args["blocks"])
    [outcome] = slack.of("chat.postMessage")
    assert (outcome.args["channel"], outcome.args["text"]) == (
        REQUESTER_SLACK,
        f"Your request #{req.pk} for {ent} is denied.",
    )


def test_the_outbox_is_visible_in_metrics(people, ent, slack, clock):
    from integrations.metrics import collect_slack

    submit(people["requester"], ent)  # the event waits: no message yet
    clock.shift(timedelta(seconds=31))
    slack.down = True
    tasks.slack_sweep()
    clock.shift(timedelta(seconds=10))
    messages, age = collect_slack()
    by_status = {s.labels["status"]: s.value for s in messages.samples}
    assert by_status == {"pending": 1, "done": 0, "skipped": 0, "failed": 0}
    assert age.samples[0].value >= 10
