"""A real SCIM 2.0 server for tests and benchmarks: the standalone test server that ships with
``scim2-server`` (``python -m scim2_server.testserver.cli``), in its own process, on a free
loopback port, with a bearer token, stopped in a finally.

Its storage is in memory: every test starts from an empty server or uses names of its own.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_models import Group, SearchRequest, User

from connectors.scim import _provider


@dataclass(frozen=True)
class ScimServer:
    base_url: str
    token: str
    port: int

    @contextlib.contextmanager
    def client(self) -> Iterator[SyncSCIMClient]:
        """A scim2-client session straight to the server (to arrange or inspect state)."""
        with httpx2.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {self.token}"}
        ) as http:
            yield SyncSCIMClient(http, provider=_provider())

    def create_group(self, display_name: str) -> str:
        with self.client() as scim:
            return str(scim.create(Group(display_name=display_name)).id)

    def member_user_names(self, display_name: str) -> list[str]:
        """userNames of the group's members, read directly from the server."""
        with self.client() as scim:
            found = scim.query(
                Group, query_parameters=SearchRequest(filter=f'displayName eq "{display_name}"')
            ).resources
            assert found and len(found) == 1, f"no group {display_name!r}"
            ids = [m.value for m in (found[0].members or [])]
            names = []
            for member_id in ids:
                names.append(scim.query(User, member_id).user_name)
            return sorted(names)

    def users(self, user_name: str) -> list[User]:
        with self.client() as scim:
            return list(
                scim.query(
                    User, query_parameters=SearchRequest(filter=f'userName eq "{user_name}"')
                ).resources
                or []
            )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_scim_server(*, token: str | None = None, timeout: float = 20.0) -> Iterator[ScimServer]:
    """Start the scim2-server test server on a free loopback port; stop it on exit."""
    token = token or f"scim-test-{secrets.token_urlsafe(16)}"
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [
            sys.executable,
            "-m",
            "scim2_server.testserver.cli",
            "--hostname",
            "127.0.0.1",
            "--port",
            str(port),
            "--bearer-token",
            token,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base_url = f"http://127.0.0.1:{port}/v2"
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"scim2-server exited with {process.returncode}")
            try:
                with urllib.request.urlopen(f"{base_url}/ServiceProviderConfig", timeout=1):  # noqa: S310
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    raise RuntimeError("scim2-server did not answer in time") from None
                time.sleep(0.05)
        yield ScimServer(base_url=base_url, token=token, port=port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@dataclass
class Throttle:
    """What :func:`throttling_proxy` does: the first ``failures`` requests get ``status``."""

    failures: int = 2
    status: int = 429
    retry_after: str | None = "7"
    seen: int = 0
    refused: int = 0
    base_url: str = ""


@contextlib.contextmanager
def throttling_proxy(target: ScimServer, throttle: Throttle) -> Iterator[Throttle]:
    """A tiny loopback HTTP server in front of the real SCIM server: it answers the first
    ``throttle.failures`` requests with ``throttle.status`` (a SCIM error, ``Retry-After``)
    and forwards every later request unchanged."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    upstream = target.base_url.rsplit("/v2", 1)[0]
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _handle(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            with lock:
                throttle.seen += 1
                refuse = throttle.refused < throttle.failures
                if refuse:
                    throttle.refused += 1
            if refuse:
                payload = json.dumps(
                    {
                        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                        "status": str(throttle.status),
                        "detail": "slow down",
                    }
                ).encode()
                self.send_response(throttle.status)
                self.send_header("Content-Type", "application/scim+json")
                if throttle.retry_after is not None:
                    self.send_header("Retry-After", throttle.retry_after)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            headers = {
                name: value
                for name, value in self.headers.items()
                if name.lower() in {"authorization", "content-type", "accept", "if-match"}
            }
            request = urllib.request.Request(  # noqa: S310 - loopback
                upstream + self.path, data=body, headers=headers, method=self.command
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                    status, answer, content_type = (
                        response.status,
                        response.read(),
                        response.headers.get("Content-Type", ""),
                    )
            except urllib.error.HTTPError as exc:
                status, answer, content_type = (
                    exc.code,
                    exc.read(),
                    exc.headers.get("Content-Type", ""),
                )
            self.send_response(status)
            if content_type:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    throttle.base_url = f"http://127.0.0.1:{httpd.server_address[1]}/v2"
    try:
        yield throttle
    finally:
        httpd.shutdown()
        httpd.server_close()
