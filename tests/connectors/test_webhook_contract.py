"""The webhook connector passes the connector contract against a real receiver: a loopback
HTTP server (in a thread) that does what docs/CONNECTORS.md asks of a webhook receiver: it
verifies each signature with ``verify_signature``, applies grant and revoke as desired state,
answers ``{"changed": ...}``, and serves the holders list with a keyset cursor. It refuses
unsigned or wrongly signed calls (401) and entitlements it does not know (404)."""

from __future__ import annotations

import json
import secrets
import socket
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from connectors.base import EntitlementRef, PrincipalRef
from connectors.webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookConnector,
    verify_signature,
)
from tests.connectors.contract import ConnectorContract

SECRET_ENV = "TOLLGATE_TEST_WEBHOOK_CONTRACT_SECRET"


class Receiver:
    """The downstream service's state: (principal, entitlement) memberships."""

    def __init__(self, secret: str, entitlements: set[str]):
        self.secret = secret
        self.entitlements = entitlements
        self.members: set[tuple[str, str]] = set()
        self.lock = threading.Lock()


def _handler(receiver: Receiver):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _answer(self, status: int, payload: dict) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _signed(self, body: bytes) -> bool:
            return verify_signature(
                receiver.secret,
                self.headers.get(TIMESTAMP_HEADER),
                body,
                self.headers.get(SIGNATURE_HEADER),
            )

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if not self._signed(body):
                return self._answer(401, {"error": "bad signature"})
            call = json.loads(body)
            slug = call["entitlement"]["slug"]
            if slug not in receiver.entitlements:
                return self._answer(404, {"error": f"unknown entitlement {slug}"})
            who = call["principal"]["login"] or call["principal"]["email"]
            with receiver.lock:
                item = (who, slug)
                if call["operation"] == "grant":
                    changed = item not in receiver.members
                    receiver.members.add(item)
                else:
                    changed = item in receiver.members
                    receiver.members.discard(item)
            return self._answer(200, {"changed": changed})

        def do_GET(self):
            parts = urllib.parse.urlsplit(self.path)
            if not self._signed(parts.query.encode()):
                return self._answer(401, {"error": "bad signature"})
            query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
            slug = query.get("entitlement", [""])[0]
            after = query.get("cursor", [""])[0]
            size = int(query.get("page_size", ["500"])[0])
            with receiver.lock:
                rows = sorted(
                    (who, ent)
                    for who, ent in receiver.members
                    if (not slug or ent == slug) and who > after
                )
            page = rows[:size]
            more = len(rows) > size
            return self._answer(
                200,
                {
                    "holders": [{"principal": w, "entitlement": e, "level": None} for w, e in page],
                    "next": page[-1][0] if more else None,
                },
            )

    return Handler


@pytest.fixture
def receiver(monkeypatch):
    secret = f"whsec-{secrets.token_hex(12)}"
    state = Receiver(secret, {"read"})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    monkeypatch.setenv(SECRET_ENV, secret)
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/tollgate"  # type: ignore[attr-defined]
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


class TestWebhookContract(ConnectorContract):
    @pytest.fixture
    def connector(self, receiver):
        return WebhookConnector({"url": receiver.url, "secret_env": SECRET_ENV})

    @pytest.fixture
    def entitlement(self):
        return EntitlementRef("billing", "read")

    @pytest.fixture
    def principals(self):
        return [PrincipalRef(f"{name}@example.com") for name in ("ann", "bob", "cat", "dan", "eve")]

    @pytest.fixture
    def page_size(self):
        return 2

    @pytest.fixture
    def unreachable_connector(self, receiver):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        return WebhookConnector(
            {"url": f"http://127.0.0.1:{port}/tollgate", "secret_env": SECRET_ENV, "timeout": 2}
        )

    @pytest.fixture
    def permanent_failure(self, connector):
        unknown = EntitlementRef("billing", "no-such-entitlement")
        return lambda: connector.grant(PrincipalRef("x@example.com"), unknown, idempotency_key="k")

    @pytest.fixture
    def secrets(self, receiver):
        return [receiver.secret]


def test_health_reports_a_secret_the_receiver_refuses(receiver, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, "not-the-shared-secret")
    health = WebhookConnector({"url": receiver.url, "secret_env": SECRET_ENV}).health()
    assert health.ok is False
    assert health.detail == "webhook GET to 127.0.0.1 answered HTTP 401"
    assert "not-the-shared-secret" not in health.detail
