"""Audit checkpoints also go to AUDIT_CHECKPOINT_URL: signed, and retried after a failure."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from audit.services import audit_checkpoint, audit_record
from audit.verify import read_checkpoints


class Receiver:
    def __init__(self) -> None:
        self.received: list[tuple[dict, str, bytes]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(
                    (json.loads(body), self.headers.get("X-Tollgate-Signature", ""), body)
                )
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/checkpoints"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings) -> Iterator[Receiver]:
    r = Receiver()
    settings.AUDIT_CHECKPOINT_URL = r.url
    settings.AUDIT_CHAIN_KEY = "test-chain-key"
    yield r
    r.close()


def test_each_checkpoint_is_posted_signed_and_also_written_to_the_file(
    db, receiver, settings, requester
):
    event = audit_record(actor=None, action="user.updated", target=requester)
    checkpoint = audit_checkpoint(note="interval")
    assert len(receiver.received) == 1
    payload, signature, body = receiver.received[0]
    assert payload == {"checkpoints": [checkpoint]}
    assert checkpoint["seq"] == event.seq and checkpoint["hash"] == event.hash
    expected = hmac.new(b"test-chain-key", body, hashlib.sha256).hexdigest()
    assert signature == f"sha256={expected}"
    assert read_checkpoints(settings.AUDIT_CHECKPOINT_FILE) == [checkpoint]


def test_a_failed_post_never_fails_the_checkpoint_and_is_retried_next_time(
    db, receiver, settings, requester, caplog
):
    receiver.status = 503
    audit_record(actor=None, action="user.updated", target=requester)
    first = audit_checkpoint(note="interval")  # answered 503: logged, not raised
    assert "not delivered" in caplog.text
    receiver.status = 200
    audit_record(actor=None, action="user.updated", target=requester)
    second = audit_checkpoint(note="interval")
    assert [p for p, _, _ in receiver.received] == [
        {"checkpoints": [first]},
        {"checkpoints": [first, second]},
    ]
    third = audit_checkpoint(note="interval")  # delivered ones are not sent again
    assert receiver.received[-1][0] == {"checkpoints": [third]}
    assert read_checkpoints(settings.AUDIT_CHECKPOINT_FILE) == [first, second, third]


def test_an_unreachable_url_is_logged_and_the_file_is_still_written(db, settings, caplog):
    settings.AUDIT_CHECKPOINT_URL = "http://127.0.0.1:9/nothing-listens-here"
    checkpoint = audit_checkpoint(note="interval")
    assert read_checkpoints(settings.AUDIT_CHECKPOINT_FILE) == [checkpoint]
    assert "not delivered" in caplog.text


def test_no_url_posts_nothing(db, settings, monkeypatch):
    from audit import checkpoints

    settings.AUDIT_CHECKPOINT_URL = ""
    monkeypatch.setattr(checkpoints, "_post", lambda *a: pytest.fail("posted without a URL"))
    audit_checkpoint(note="interval")
