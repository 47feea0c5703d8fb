"""OpenTelemetry traces (O5), only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.

Unset (the default), nothing of OpenTelemetry is imported and nothing is instrumented: the
portal pays nothing. Set, spans of Django requests, Celery tasks, psycopg queries and Redis
commands are exported over OTLP/HTTP to ``<endpoint>/v1/traces`` in batches, under the service
name ``OTEL_SERVICE_NAME`` (default ``tollgate``).

``CoreConfig.ready()`` calls :func:`setup` in every web process (gunicorn imports the app in
each worker after the fork); a Celery pool process sets up its own exporter when it starts
(``worker_process_init``), since a batch exporter's thread does not survive a fork.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

_state: dict[str, Any] = {"provider": None, "instrumented": False}


def enabled() -> bool:
    return bool(settings.OTEL_EXPORTER_OTLP_ENDPOINT)


def _provider(exporter=None):
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.OTEL_SERVICE_NAME})
    )
    if exporter is None:
        endpoint = settings.OTEL_EXPORTER_OTLP_ENDPOINT.rstrip("/") + "/v1/traces"
        exporter = OTLPSpanExporter(endpoint=endpoint)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def setup(*, exporter=None) -> bool:
    """Install the tracer provider and the instrumentors once; False when tracing is off."""
    if not enabled():
        return False
    if _state["instrumented"]:
        return True
    from opentelemetry import trace
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    provider = _provider(exporter)
    trace.set_tracer_provider(provider)
    _state["provider"] = provider
    DjangoInstrumentor().instrument(tracer_provider=provider)
    PsycopgInstrumentor().instrument(tracer_provider=provider, skip_dep_check=True)
    RedisInstrumentor().instrument(tracer_provider=provider)
    CeleryInstrumentor().instrument(tracer_provider=provider)
    _state["instrumented"] = True

    from celery.signals import worker_process_init

    worker_process_init.connect(_after_fork, dispatch_uid="otel-after-fork", weak=False)
    logger.info("OpenTelemetry tracing to %s", settings.OTEL_EXPORTER_OTLP_ENDPOINT)
    return True


def _after_fork(**kwargs) -> None:
    """A pool process: a fresh batch processor (its thread), same instrumentation."""
    from opentelemetry.instrumentation.celery import CeleryInstrumentor

    provider = _provider()
    _state["provider"] = provider
    CeleryInstrumentor().uninstrument()
    CeleryInstrumentor().instrument(tracer_provider=provider)


def flush(timeout_millis: int = 5000) -> bool:
    provider = _state["provider"]
    return bool(provider.force_flush(timeout_millis)) if provider is not None else False
