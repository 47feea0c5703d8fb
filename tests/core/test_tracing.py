"""OpenTelemetry (O5): off and free unless OTEL_EXPORTER_OTLP_ENDPOINT is set; set, spans arrive.

Each case runs Django in a fresh process: instrumentation is process-wide and must not leak
into the other tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_CHILD = """
import json, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
import django
django.setup()
from django.test import Client
from portal.core import tracing
status = Client().get("/healthz").status_code
flushed = tracing.flush()
print(json.dumps({
    "status": status,
    "flushed": flushed,
    # redis-py imports the OpenTelemetry API on its own when it is installed; the
    # instrumentors, the SDK's exporter and a tracer provider are ours to install or not.
    "otel_modules": sorted(
        m for m in sys.modules
        if m.startswith(("opentelemetry.instrumentation", "opentelemetry.exporter"))
    ),
    "provider": type(__import__("opentelemetry.trace").trace.get_tracer_provider()).__name__
    if "opentelemetry.trace" in sys.modules else "none",
    "middleware": [m for m in __import__("django.conf").conf.settings.MIDDLEWARE if "opentelemetry" in m],
}))
"""


def _run(env_extra: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(env_extra)
    env.pop("REDIS_URL", None)  # no broker needed: the process only serves /healthz
    env.pop("DATABASE_URL", None)
    env["CELERY_TASK_ALWAYS_EAGER"] = "true"
    out = subprocess.run(
        [sys.executable, "-c", _CHILD], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_unset_endpoint_imports_and_instruments_nothing():
    result = _run({})
    assert result["provider"] in ("none", "ProxyTracerProvider")
    del result["provider"]
    assert result == {"status": 200, "flushed": False, "otel_modules": [], "middleware": []}


def test_set_endpoint_exports_request_spans_over_otlp_http():
    received: list[tuple[str, bytes]] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            received.append((self.path, self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        result = _run(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_SERVICE_NAME": "tollgate-test"}
        )
    finally:
        server.shutdown()
        server.server_close()
    assert result["status"] == 200 and result["flushed"] is True
    assert result["provider"] == "TracerProvider"
    for instrumented in ("celery", "django", "psycopg", "redis"):
        assert f"opentelemetry.instrumentation.{instrumented}" in result["otel_modules"]
    assert result["middleware"], "the Django instrumentor did not install its middleware"
    assert [path for path, _ in received] == ["/v1/traces"]
    body = received[0][1]
    assert b"tollgate-test" in body  # the resource's service.name
    assert b"GET healthz" in body or b"/healthz" in body  # the request's span
