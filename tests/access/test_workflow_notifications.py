"""Notifications: e-mail and a Slack-compatible chat webhook, sent by Celery
tasks after commit, with deep links. The webhook is a real local HTTP server."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.urls import reverse

from access import services, tasks
from portal.core.errors import NotPermitted
from tests.conftest import make_user

from .factories import make_entitlement, make_policy, make_service, make_users_policy, snapshot

pytestmark = pytest.mark.django_db


class ChatHook:
    def __init__(self):
        self.posts: list[tuple[str, str, dict]] = []
        self.status = 200
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.posts.append((self.path, self.headers["Content-Type"], json.loads(body)))
                self.send_response(hook.status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def texts(self) -> list[str]:
        return [payload["text"] for _, _, payload in self.posts]


@pytest.fixture
def chat(settings):
    hook = ChatHook()
    hook.thread.start()
    settings.CHAT_WEBHOOK_URL = hook.url
    settings.PORTAL_BASE_URL = "https://tollgate.example.com"
    yield hook
    hook.server.shutdown()
    hook.server.server_close()


@pytest.fixture
def ent(org):
    return make_entitlement(
        make_service(org["search"]), risk="medium", policy=make_policy("mgr", [("manager", 1)])
    )


def link(req) -> str:
    return "https://tollgate.example.com" + reverse("access:request-detail", args=[req.pk])


def test_a_new_request_notifies_its_approvers_after_commit(
    requester, manager, ent, chat, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        req = services.access_request_submit(
            actor=requester,
            principal=requester,
            entitlement=ent,
            justification="incident 42",
            duration_days=5,
        )
    # Nothing is sent inside the transaction; it waits for the commit.
    assert (mail.outbox, chat.posts) == ([], [])
    for callback in callbacks:
        callback()
    [message] = mail.outbox
    assert message.to == [manager.email]
    assert (
        message.subject == f"[Tollgate] Request #{req.pk} waits on your approval: billing-db/read"
    )
    assert (
        "requester@example.com requests billing-db/read (Medium risk) for 5 days." in message.body
    )
    assert "Why: incident 42" in message.body
    assert f"Decide: {link(req)}" in message.body
    assert chat.posts == [
        (
            "/services/T000/B000/hook",
            "application/json",
            {"text": f"{message.subject}\n<{link(req)}|Open in Tollgate>"},
        )
    ]


@pytest.mark.sqlite
def test_a_decision_notifies_the_requester_and_the_principal(
    requester, manager, ent, settings, django_capture_on_commit_callbacks
):
    settings.CHAT_WEBHOOK_URL = ""
    director = make_user("director@example.com", team=requester.team)
    manager.manager = director
    manager.save(update_fields=["manager"])
    with django_capture_on_commit_callbacks(execute=True):
        req = services.access_request_submit(
            actor=manager, principal=requester, entitlement=ent, justification="x", duration_days=5
        )
    assert [m.to for m in mail.outbox] == [[director.email]]
    with django_capture_on_commit_callbacks(execute=True):
        services.access_request_deny(
            actor=director, request_id=req.pk, reason="use the read replica"
        )
    decision = mail.outbox[-1]
    assert decision.to == sorted([manager.email, requester.email])
    assert decision.subject == f"[Tollgate] Request #{req.pk} denied: billing-db/read"
    assert (
        "Your request for billing-db/read is denied.\nReason: use the read replica" in decision.body
    )
    assert reverse("access:request-detail", args=[req.pk]) in decision.body


def test_an_approval_notifies_by_mail_and_chat(
    requester, manager, ent, chat, django_capture_on_commit_callbacks
):
    req = services.access_request_submit(
        actor=requester, principal=requester, entitlement=ent, justification="x", duration_days=5
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.access_request_approve(actor=manager, request_id=req.pk)
    [message] = mail.outbox
    assert (message.to, message.subject) == (
        [requester.email],
        f"[Tollgate] Request #{req.pk} approved: billing-db/read",
    )
    assert chat.texts == [f"{message.subject}\n<{link(req)}|Open in Tollgate>"]


def test_a_refused_decision_sends_nothing(
    requester, other_team_user, ent, chat, django_capture_on_commit_callbacks
):
    req = services.access_request_submit(
        actor=requester, principal=requester, entitlement=ent, justification="x", duration_days=5
    )
    before = snapshot(req)
    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(NotPermitted):
        services.access_request_approve(actor=other_team_user, request_id=req.pk)
    assert callbacks == []
    assert (mail.outbox, chat.posts) == ([], [])
    assert snapshot(req) == before


def test_an_intermediate_stage_notifies_the_next_approvers(
    org, requester, manager, service_owner, chat, django_capture_on_commit_callbacks
):
    ent = make_entitlement(
        make_service(org["search"]),
        policy=make_policy("two", [("manager", 1), ("service_owner", 1)]),
    )
    req = services.access_request_submit(
        actor=requester, principal=requester, entitlement=ent, justification="x", duration_days=5
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.access_request_approve(actor=manager, request_id=req.pk)
    [message] = mail.outbox
    assert (message.to, message.subject) == (
        [service_owner.email],
        f"[Tollgate] Request #{req.pk} waits on your approval: billing-db/read",
    )


def test_reminders_skip_approvers_who_already_approved(
    org, requester, settings, django_capture_on_commit_callbacks
):
    settings.CHAT_WEBHOOK_URL = ""
    u1, u2, u3 = (make_user(f"dba{i}@example.com", team=org["other"]) for i in (1, 2, 3))
    ent = make_entitlement(
        make_service(org["search"]), policy=make_users_policy("two", [u1, u2, u3], required=2)
    )
    req = services.access_request_submit(
        actor=requester, principal=requester, entitlement=ent, justification="x", duration_days=5
    )
    services.access_request_approve(actor=u1, request_id=req.pk)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.access_request_remind(request_id=req.pk) is True
    [message] = mail.outbox
    assert message.to == [u2.email, u3.email]
    assert (
        message.subject
        == f"[Tollgate] Request #{req.pk} still waits on your approval: billing-db/read"
    )


def test_a_failing_chat_webhook_retries_only_the_chat_post_and_gives_up(
    requester, manager, ent, chat, django_capture_on_commit_callbacks
):
    from portal.celery import app as celery_app

    # Eager tasks re-run their retries in-process only when errors do not propagate.
    # (the autouse _eager_celery fixture sets it back for the next test)
    celery_app.conf.task_eager_propagates = False
    chat.status = 500
    req = services.access_request_submit(
        actor=requester, principal=requester, entitlement=ent, justification="x", duration_days=5
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.access_request_approve(actor=manager, request_id=req.pk)
    celery_app.conf.task_eager_propagates = True
    req.refresh_from_db()
    # The decision stands (notification runs after commit), the mail went out once, and
    # the chat post was tried once plus a bounded number of retries.
    assert req.status == "approved"
    assert len(mail.outbox) == 1
    assert len(chat.posts) == 1 + tasks.MAX_NOTIFY_RETRIES


def test_a_webhook_url_with_another_scheme_is_refused(requester, ent, settings, tmp_path):
    from access import notifications

    settings.CHAT_WEBHOOK_URL = f"file://{tmp_path}/x"
    message = notifications.Message(["a@example.com"], "s", "b", "https://x/1")
    with pytest.raises(OSError, match="must be http"):
        notifications.post_chat(message)
    assert not (tmp_path / "x").exists()
