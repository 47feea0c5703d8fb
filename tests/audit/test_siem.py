"""The SIEM stream: in order, at least once, and a cursor that survives restarts and failures."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from audit.models import AuditEvent, SiemCursor
from audit.siem import DEFAULT_STREAM, siem_ship_pending
from audit.tasks import audit_siem_ship

from .helpers import append_events


class _Receiver:
    def __init__(self):
        self.batches: list[list[dict]] = []
        self.fail = False

    @property
    def seqs(self) -> list[int]:
        return [event["seq"] for batch in self.batches for event in batch]


@pytest.fixture
def webhook(settings):
    receiver = _Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if receiver.fail:
                self.send_response(503)
                self.end_headers()
                return
            receiver.batches.append(json.loads(body)["events"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.AUDIT_SIEM_WEBHOOK_URL = f"http://127.0.0.1:{server.server_address[1]}/ingest"
    settings.AUDIT_SIEM_FILE = ""
    yield receiver
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _all_seqs() -> list[int]:
    return list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))


def _cursor() -> int:
    return SiemCursor.objects.get(name=DEFAULT_STREAM).last_seq


@pytest.mark.django_db
def test_webhook_restart_after_failure_has_no_gap_and_no_duplicate(webhook):
    append_events(3)
    first = siem_ship_pending(batch_size=2)
    assert first.shipped == 3 and first.error is None
    assert webhook.seqs == _all_seqs()
    assert [len(b) for b in webhook.batches] == [2, 1]
    assert _cursor() == _all_seqs()[-1]
    cursor_before = _cursor()

    append_events(4, prefix="late")
    webhook.fail = True
    failed = siem_ship_pending(batch_size=2)
    assert failed.shipped == 0
    assert failed.error == "webhook answered 503"
    assert _cursor() == cursor_before  # nothing was taken, nothing is skipped
    assert len(webhook.batches) == 2

    # A "restart": nothing is kept in memory, only the cursor row counts.
    webhook.fail = False
    again = siem_ship_pending(batch_size=2)
    assert again.shipped == 4
    assert webhook.seqs == _all_seqs()  # every event exactly once, in order
    assert len(webhook.seqs) == 7
    assert _cursor() == _all_seqs()[-1]
    # Caught up: another run ships nothing.
    assert siem_ship_pending().shipped == 0
    assert len(webhook.seqs) == 7


@pytest.mark.django_db
def test_events_carry_the_chain_fields(webhook):
    events = append_events(1)
    siem_ship_pending()
    shipped = webhook.batches[0][0]
    assert shipped["seq"] == events[0].seq
    assert shipped["hash"] == events[0].hash
    assert shipped["prev_hash"] == events[0].prev_hash
    assert shipped["action"] == "user.updated"
    assert shipped["after"] == {"n": 0}


@pytest.mark.django_db
def test_failure_mid_stream_keeps_what_was_shipped(webhook, monkeypatch):
    append_events(5)
    import audit.siem as siem

    real = siem._post_webhook
    calls = {"n": 0}

    def flaky(url, events, *, timeout):
        calls["n"] += 1
        if calls["n"] == 2:
            raise siem.ShipError("connection reset")
        real(url, events, timeout=timeout)

    monkeypatch.setattr(siem, "_post_webhook", flaky)
    result = siem_ship_pending(batch_size=2)
    assert result.shipped == 2 and result.error == "connection reset"
    assert _cursor() == _all_seqs()[1]
    siem_ship_pending(batch_size=2)
    assert webhook.seqs == _all_seqs()


@pytest.mark.django_db
def test_crash_after_ship_re_sends_only_the_batch_in_flight(webhook, monkeypatch):
    import audit.siem as siem

    append_events(5)
    real = siem._advance_cursor
    calls = {"n": 0}

    def crash_on_second(**kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("worker killed")
        return real(**kwargs)

    monkeypatch.setattr(siem, "_advance_cursor", crash_on_second)
    with pytest.raises(RuntimeError):
        siem_ship_pending(batch_size=2)
    seqs = _all_seqs()
    assert _cursor() == seqs[1]

    monkeypatch.setattr(siem, "_advance_cursor", real)
    siem_ship_pending(batch_size=2)
    # The batch in flight (seqs 3 and 4) arrives twice; nothing else is repeated or lost.
    assert webhook.seqs == seqs[:4] + seqs[2:]
    assert _cursor() == seqs[-1]


@pytest.mark.django_db
def test_unreachable_webhook_leaves_cursor(settings):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    settings.AUDIT_SIEM_WEBHOOK_URL = f"http://127.0.0.1:{port}/"
    settings.AUDIT_SIEM_FILE = ""
    append_events(2)
    result = siem_ship_pending()
    assert result.shipped == 0
    assert result.error.startswith("webhook unreachable")
    assert _cursor() == 0


@pytest.mark.sqlite
@pytest.mark.django_db
def test_file_stream_through_the_beat_task(settings, tmp_path):
    target = tmp_path / "siem" / "audit.jsonl"
    settings.AUDIT_SIEM_WEBHOOK_URL = ""
    settings.AUDIT_SIEM_FILE = str(target)
    append_events(3)
    audit_siem_ship.delay()
    append_events(2, prefix="b")
    audit_siem_ship.delay()

    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert [row["seq"] for row in lines] == _all_seqs()
    assert _cursor() == _all_seqs()[-1]


@pytest.mark.sqlite
@pytest.mark.django_db
def test_task_does_nothing_when_not_configured(settings):
    settings.AUDIT_SIEM_WEBHOOK_URL = ""
    settings.AUDIT_SIEM_FILE = ""
    append_events(2)
    audit_siem_ship.delay()
    assert not SiemCursor.objects.exists()


@pytest.mark.django_db
def test_task_skips_while_another_run_holds_the_lock(settings, tmp_path, monkeypatch):
    from contextlib import contextmanager

    import audit.tasks as tasks

    @contextmanager
    def held(name):
        yield False

    monkeypatch.setattr(tasks, "advisory_lock", held)
    settings.AUDIT_SIEM_FILE = str(tmp_path / "s.jsonl")
    settings.AUDIT_SIEM_WEBHOOK_URL = ""
    append_events(1)
    audit_siem_ship.delay()
    assert not (tmp_path / "s.jsonl").exists()
    assert not SiemCursor.objects.exists()


def test_beat_entry_is_registered(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["audit-siem-ship"]
    assert entry["task"] == "audit.tasks.audit_siem_ship"
