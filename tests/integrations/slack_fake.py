"""A local HTTP server standing in for the Slack Web API (the SDK's ``base_url`` points at it),
and Slack's request signing, made in the tests (no network, no Slack)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # noqa: S105 - a test secret
BOT_TOKEN = "xoxb-test-token"  # noqa: S105 - a test token


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    token: str


@dataclass
class FakeSlack:
    """Records every Web API call; ``emails`` answers users.lookupByEmail; ``down`` answers
    every call with HTTP 503 (Slack unreachable for the SDK)."""

    emails: dict[str, str] = field(default_factory=dict)
    down: bool = False
    calls: list[Call] = field(default_factory=list)
    _ts: int = 0

    def start(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                url = urlsplit(self.path)
                method = url.path.rsplit("/", 1)[-1]
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                args: dict[str, Any] = {k: v[0] for k, v in parse_qs(url.query).items()}
                if raw:
                    if (self.headers.get("Content-Type") or "").startswith("application/json"):
                        args.update(json.loads(raw))
                    else:
                        args.update({k: v[0] for k, v in parse_qs(raw.decode()).items()})
                for key in ("blocks", "view"):
                    if isinstance(args.get(key), str):
                        args[key] = json.loads(args[key])
                token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                fake.calls.append(Call(method, args, token))
                if fake.down:
                    self.send_response(503)
                    self.end_headers()
                    self.wfile.write(b"service unavailable")
                    return
                body = fake.reply(method, args)
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = _answer  # noqa: N815 - http.server API
            do_POST = _answer  # noqa: N815

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/api/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reply(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "users.lookupByEmail":
            user = self.emails.get(args.get("email", ""))
            if user is None:
                return {"ok": False, "error": "users_not_found"}
            return {"ok": True, "user": {"id": user}}
        if method == "chat.postMessage":
            self._ts += 1
            channel = args["channel"]
            channel = "D" + channel[1:] if channel.startswith("U") else channel
            return {"ok": True, "channel": channel, "ts": f"1700000000.{self._ts:06d}"}
        if method == "chat.update":
            return {"ok": True, "channel": args["channel"], "ts": args["ts"]}
        return {"ok": True}

    def of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def clear(self) -> None:
        self.calls.clear()


def action_ids(blocks: list[dict]) -> list[str]:
    return [
        e.get("action_id", "")
        for b in blocks
        if b.get("type") == "actions"
        for e in b.get("elements", [])
    ]


def button_values(blocks: list[dict]) -> dict[str, str]:
    return {
        e["action_id"]: e.get("value", "")
        for b in blocks
        if b.get("type") == "actions"
        for e in b.get("elements", [])
    }


def text_of(blocks: list[dict]) -> str:
    out = []
    for b in blocks:
        if "text" in b:
            out.append(b["text"]["text"])
        for e in b.get("elements", []):
            if e.get("type") == "mrkdwn":
                out.append(e["text"])
    return "\n".join(out)


def sign(body: bytes, *, timestamp: int | None = None, secret: str = SIGNING_SECRET) -> dict:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    base = b"v0:" + ts.encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"HTTP_X_SLACK_REQUEST_TIMESTAMP": ts, "HTTP_X_SLACK_SIGNATURE": f"v0={digest}"}


def interaction_body(payload: dict) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


def block_action(*, user: str, action_id: str, request_id: int | str, channel: str = "D1") -> dict:
    return {
        "type": "block_actions",
        "user": {"id": user},
        "team": {"id": "T0001"},
        "channel": {"id": channel},
        "trigger_id": "1337.42.abcd",
        "actions": [{"action_id": action_id, "value": str(request_id), "type": "button"}],
    }


def reason_submission(*, user: str, request_id: int, decision: str, reason: str) -> dict:
    return {
        "type": "view_submission",
        "user": {"id": user},
        "team": {"id": "T0001"},
        "view": {
            "callback_id": "tollgate_reason",
            "private_metadata": json.dumps({"request_id": request_id, "decision": decision}),
            "state": {"values": {"reason": {"reason_input": {"value": reason}}}},
        },
    }
