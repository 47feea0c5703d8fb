"""Webhook connector against a local HTTP server running in a thread."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from connectors.base import (
    ConfigError,
    EntitlementRef,
    PermanentError,
    PrincipalRef,
    TransientError,
)
from connectors.webhook import WebhookConnector, sign, verify_signature

SECRET = "s3cr3t-webhook-key"
SECRET_ENV = "TOLLGATE_TEST_WEBHOOK_SECRET"
ANN = PrincipalRef("ann@example.com", login="ann")
READ = EntitlementRef("billing", "read", {"scope": "ro"})


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Script:
    """Answers the server gives, in order; the last one repeats."""

    answers: list[tuple[int, bytes, float]] = field(default_factory=lambda: [(200, b"", 0.0)])
    requests: list[Recorded] = field(default_factory=list)
    holders_pages: dict[str, dict] = field(default_factory=dict)


@pytest.fixture
def server(monkeypatch):
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output quiet
            pass

        def _record(self) -> Recorded:
            length = int(self.headers.get("Content-Length") or 0)
            parts = urllib.parse.urlsplit(self.path)
            item = Recorded(
                self.command,
                parts.path,
                parts.query,
                dict(self.headers.items()),
                self.rfile.read(length),
            )
            script.requests.append(item)
            return item

        def _answer(self, status: int, body: bytes, extra: dict | None = None) -> None:
            self.send_response(status)
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            self._record()
            status, body, delay = (
                script.answers.pop(0) if len(script.answers) > 1 else script.answers[0]
            )
            if delay:
                time.sleep(delay)
            extra = {"Location": "http://127.0.0.1:9/elsewhere"} if 300 <= status < 400 else None
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._answer(status, body, extra)

        def do_GET(self):
            item = self._record()
            cursor = urllib.parse.parse_qs(item.query).get("cursor", [""])[0]
            page = script.holders_pages.get(cursor)
            if page is None:
                self._answer(404, b"{}")
            else:
                self._answer(200, json.dumps(page).encode())

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    monkeypatch.setenv(SECRET_ENV, SECRET)
    script.url = f"http://127.0.0.1:{httpd.server_address[1]}/tollgate"  # type: ignore[attr-defined]
    try:
        yield script
    finally:
        httpd.shutdown()
        httpd.server_close()


def make(server, **config) -> WebhookConnector:
    return WebhookConnector({"url": server.url, "secret_env": SECRET_ENV, **config})


def test_grant_posts_signed_json_with_an_idempotency_key(server):
    before = int(time.time())
    result = make(server).grant(ANN, READ, idempotency_key="job-42")

    assert (result.changed, result.status) == (True, "done")
    assert result.detail == "grant accepted by webhook (HTTP 200)"
    [request] = server.requests
    assert (request.method, request.path) == ("POST", "/tollgate")
    assert request.headers["Idempotency-Key"] == "job-42"
    assert request.headers["Content-Type"] == "application/json"
    timestamp = request.headers["X-Tollgate-Timestamp"]
    assert before <= int(timestamp) <= int(time.time())
    assert verify_signature(
        SECRET, timestamp, request.body, request.headers["X-Tollgate-Signature"]
    )
    assert request.headers["X-Tollgate-Signature"] == sign(SECRET, timestamp, request.body)
    assert json.loads(request.body) == {
        "operation": "grant",
        "principal": {"email": "ann@example.com", "login": "ann"},
        "entitlement": {"service": "billing", "slug": "read", "config": {"scope": "ro"}},
        "idempotency_key": "job-42",
        "timestamp": timestamp,
    }
    # A receiver with another secret, or a tampered body, refuses it.
    assert not verify_signature(
        "other", timestamp, request.body, request.headers["X-Tollgate-Signature"]
    )
    assert not verify_signature(
        SECRET,
        timestamp,
        request.body.replace(b"grant", b"revoke"),
        request.headers["X-Tollgate-Signature"],
    )


def test_revoke_reports_a_no_op_when_the_receiver_says_so(server):
    server.answers = [(200, b'{"changed": false}', 0.0)]
    result = make(server).revoke(ANN, READ, idempotency_key="job-43")
    assert (result.changed, result.status) == (False, "done")
    assert json.loads(server.requests[0].body)["operation"] == "revoke"


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_2xx_is_success(server, status):
    server.answers = [(status, b"", 0.0)]
    assert make(server).grant(ANN, READ, idempotency_key="k").done is True


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_4xx_is_permanent(server, status):
    server.answers = [(status, b'{"error": "no"}', 0.0)]
    with pytest.raises(PermanentError, match=f"answered HTTP {status}") as info:
        make(server).grant(ANN, READ, idempotency_key="k")
    assert not isinstance(info.value, TransientError)
    assert len(server.requests) == 1


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_5xx_and_throttling_are_transient(server, status):
    server.answers = [(status, b"", 0.0)]
    with pytest.raises(TransientError, match=f"answered HTTP {status}"):
        make(server).grant(ANN, READ, idempotency_key="k")


def test_redirects_are_not_followed_and_are_permanent(server):
    server.answers = [(302, b"", 0.0)]
    with pytest.raises(PermanentError, match="answered HTTP 302"):
        make(server).grant(ANN, READ, idempotency_key="k")
    assert len(server.requests) == 1


def test_timeout_is_transient(server):
    server.answers = [(200, b"", 1.0)]
    started = time.monotonic()
    with pytest.raises(TransientError, match=r"timed out after 0.2s"):
        make(server, timeout=0.2).grant(ANN, READ, idempotency_key="k")
    assert time.monotonic() - started < 1.0


def test_connection_refused_is_transient(monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    conn = WebhookConnector({"url": f"http://127.0.0.1:{port}/x", "secret_env": SECRET_ENV})
    with pytest.raises(TransientError, match="failed"):
        conn.grant(ANN, READ, idempotency_key="k")


def test_list_holders_follows_pages_and_signs_the_query(server):
    server.holders_pages = {
        "": {
            "holders": [{"principal": "ann", "entitlement": "read", "level": "member"}],
            "next": "p2",
        },
        "p2": {"holders": [{"principal": "bob", "entitlement": "read"}], "next": None},
    }
    conn = make(server)
    first = conn.list_holders(READ, page_size=1)
    assert [(h.principal, h.entitlement, h.level) for h in first.holders] == [
        ("ann", "read", "member")
    ]
    assert first.next_cursor == "p2"
    assert [h.principal for h in conn.iter_holders(READ, page_size=1)] == ["ann", "bob"]

    request = server.requests[0]
    assert (request.method, request.path) == ("GET", "/tollgate/holders")
    assert urllib.parse.parse_qs(request.query, keep_blank_values=True) == {
        "cursor": [""],
        "page_size": ["1"],
        "entitlement": ["read"],
    }
    assert verify_signature(
        SECRET,
        request.headers["X-Tollgate-Timestamp"],
        request.query.encode(),
        request.headers["X-Tollgate-Signature"],
    )
    assert "Idempotency-Key" not in request.headers


def test_list_holders_refuses_a_malformed_answer(server):
    server.holders_pages = {"": {"members": []}}
    with pytest.raises(PermanentError, match="holders answer"):
        make(server).list_holders()
    server.holders_pages = {"": {"holders": [{"principal": 7}], "next": None}}
    with pytest.raises(PermanentError, match="malformed holder"):
        make(server).list_holders()


def test_missing_secret_fails_before_any_request(server, monkeypatch):
    monkeypatch.delenv(SECRET_ENV)
    with pytest.raises(ConfigError, match=f"environment variable {SECRET_ENV}"):
        make(server).grant(ANN, READ, idempotency_key="k")
    assert server.requests == []


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"url": "ftp://host/x", "secret_env": SECRET_ENV}, "must be an http"),
        ({"url": "https://u:p@host/x", "secret_env": SECRET_ENV}, "may not carry credentials"),
        ({"url": "https://host/x"}, "missing config key"),
        ({"url": "https://host/x", "secret_env": SECRET_ENV, "timeout": 0}, "timeout"),
    ],
)
def test_bad_config_is_refused(config, message):
    with pytest.raises(ConfigError, match=message):
        WebhookConnector(config)


def test_verify_signature_rejects_stale_and_malformed_input():
    body = b'{"a":1}'
    now = 1_700_000_000
    header = sign(SECRET, str(now), body)
    assert verify_signature(SECRET, str(now), body, header, now=now + 299)
    assert not verify_signature(SECRET, str(now), body, header, now=now + 301)
    assert not verify_signature(SECRET, str(now), body, header, now=now - 301)
    assert not verify_signature(SECRET, str(now + 1), body, header, now=now)
    assert not verify_signature(SECRET, "not-a-number", body, header, now=now)
    assert not verify_signature(SECRET, str(now), body, header.replace("sha256=", "sha1="), now=now)
    assert not verify_signature(SECRET, str(now), body, None, now=now)
    assert not verify_signature(SECRET, None, body, header, now=now)
    assert verify_signature(SECRET.encode(), str(now), body, header, tolerance_s=10, now=now)
