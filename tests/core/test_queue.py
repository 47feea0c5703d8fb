"""portal.core.queue.enqueue_on_commit: after commit, the mute switch, the queue by kind, and a
broker error at send that never fails the change."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.db import transaction
from kombu.exceptions import OperationalError

from portal.core.queue import enqueue_on_commit, notifications_muted
from reviews import services as review_services
from reviews.tasks import review_mail_send
from usage import services as usage_services
from usage.tasks import notify_removals

pytestmark = pytest.mark.django_db


class FakeTask:
    def __init__(self, error: Exception | None = None):
        self.sent: list[tuple[list, dict]] = []
        self.error = error

    def apply_async(self, args, **options):
        if self.error is not None:
            raise self.error
        self.sent.append((args, options))


def test_a_notify_task_is_not_sent_while_muted(django_capture_on_commit_callbacks):
    task = FakeTask()
    with django_capture_on_commit_callbacks(execute=True) as callbacks, notifications_muted():
        assert enqueue_on_commit(task, 7, kind="notify") is False
    assert callbacks == []
    assert task.sent == []


def test_the_mute_switch_leaves_other_kinds_alone(django_capture_on_commit_callbacks):
    task = FakeTask()
    with django_capture_on_commit_callbacks(execute=True) as callbacks, notifications_muted():
        assert enqueue_on_commit(task, 7) is True
    assert len(callbacks) == 1
    assert task.sent == [([7], {})]


def test_a_notify_task_goes_to_the_configured_notify_queue(
    settings, django_capture_on_commit_callbacks
):
    settings.TOLLGATE_NOTIFY_QUEUE = "alerts"
    task = FakeTask()
    with django_capture_on_commit_callbacks(execute=True):
        enqueue_on_commit(task, 1, "two", kind="notify", countdown=5)
    assert task.sent == [([1, "two"], {"queue": "alerts", "countdown": 5})]


def test_a_task_is_sent_only_after_commit(django_capture_on_commit_callbacks):
    task = FakeTask()
    sent_after: list[bool] = []
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        enqueue_on_commit(task, 3, kind="notify", after_send=lambda: sent_after.append(True))
        assert task.sent == []  # still inside the transaction
        assert sent_after == []
    assert len(callbacks) == 1
    assert task.sent == [([3], {"queue": "notify"})]
    assert sent_after == [True]


def test_nothing_is_sent_when_the_transaction_rolls_back(django_capture_on_commit_callbacks):
    task = FakeTask()
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        enqueue_on_commit(task, 4, kind="notify")
        raise RuntimeError("rolled back")
    assert callbacks == []
    assert task.sent == []


def test_a_broker_error_at_send_does_not_fail_the_change(django_capture_on_commit_callbacks):
    task = FakeTask(error=OperationalError("redis is down"))
    after: list[bool] = []
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        Group.objects.create(name="queue-test")
        enqueue_on_commit(task, 5, kind="notify", after_send=lambda: after.append(True))
    assert len(callbacks) == 1
    assert Group.objects.filter(name="queue-test").exists()
    assert task.sent == []
    assert after == []  # after_send runs only after a successful send


@pytest.mark.parametrize(
    ("send", "task"),
    [
        (lambda: usage_services._notify([1, 2], "scheduled"), notify_removals),
        (lambda: review_services._notify({"a@example.test": ["x"]}, "s"), review_mail_send),
    ],
    ids=["usage", "reviews"],
)
def test_app_notifications_go_through_the_queue_helper(
    send, task, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.TOLLGATE_NOTIFY_QUEUE = "alerts"
    sent: list[dict] = []
    monkeypatch.setattr(task, "apply_async", lambda args, **options: sent.append(options))
    with django_capture_on_commit_callbacks(execute=True), notifications_muted():
        send()
    assert sent == []
    with django_capture_on_commit_callbacks(execute=True):
        send()
    assert sent == [{"queue": "alerts"}]
