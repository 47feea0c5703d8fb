"""Prometheus metrics (O5): the process counters, the scrape-time collectors, ``/metrics``.

Two kinds of series:

* **Counted in the process** (HTTP requests, check decisions, Celery task runs): defined
  here with ``prometheus_client``. Under gunicorn (several worker processes) and with Celery
  workers on the same host, set ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory shared by
  them all (before they start): every process writes its values there and ``/metrics`` adds
  them up, so a scrape sees the whole host, not the worker that answered it.
* **Read on scrape** (sync jobs, drift, audit head, ingestion, queue depth, worker
  heartbeat): each app registers a collector function in its own ``metrics.py``
  (:func:`register_collector`), discovered like ``nav.py`` — ``portal.core`` knows no app.
  A collector that fails (database down) is skipped and counted in
  ``tollgate_metrics_collector_errors_total``; the rest of the scrape still answers.

``/metrics`` answers only a caller presenting ``METRICS_TOKEN`` as a Bearer token, or one
whose address is in ``METRICS_ALLOWED_NETWORKS`` (loopback by default); anyone else gets
401/403 and no data.

Labels are bounded: routes are URL pattern names (unknown paths are ``unmatched``), tasks are
registered task names, queues and services come from configuration and the catalog. No user
ids, e-mails or raw paths ever become label values.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import time
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve
from django.utils.module_loading import autodiscover_modules
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

# --- counted in the process ---------------------------------------------------------------

HTTP_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CHECK_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
TASK_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0)

HTTP_REQUESTS = Counter(
    "tollgate_http_requests_total",
    "HTTP requests answered, by route (URL pattern name), method and status code.",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "tollgate_http_request_duration_seconds",
    "Time to answer an HTTP request, by route and method.",
    ["route", "method"],
    buckets=HTTP_BUCKETS,
)
CHECK_DECISIONS = Counter(
    "tollgate_check_decisions_total",
    "Check API answers: allowed, denied, or error (the check raised).",
    ["decision"],
)
CHECK_ANSWER_SOURCE = Counter(
    "tollgate_check_answers_total",
    "Which layer answered each check: near (process memory), redis, database.",
    ["layer"],
)
CHECK_DURATION = Histogram(
    "tollgate_check_duration_seconds",
    "Time to decide one check call (a single check or a whole batch).",
    ["kind"],
    buckets=CHECK_BUCKETS,
)
TASK_RUNS = Counter(
    "tollgate_celery_task_runs_total",
    "Celery task runs finished, by task and final state (SUCCESS, FAILURE, RETRY, ...).",
    ["task", "state"],
)
TASK_FAILURES = Counter(
    "tollgate_celery_task_failures_total", "Celery task runs that raised.", ["task"]
)
TASK_RETRIES = Counter(
    "tollgate_celery_task_retries_total", "Celery task retries scheduled.", ["task"]
)
TASK_DURATION = Histogram(
    "tollgate_celery_task_duration_seconds",
    "Celery task run time, by task.",
    ["task"],
    buckets=TASK_BUCKETS,
)
COLLECTOR_ERRORS = Counter(
    "tollgate_metrics_collector_errors_total",
    "Scrape-time collectors that failed (their series are missing from that scrape).",
    ["collector"],
)

# The classic text format (what generate_latest writes), which every Prometheus parses.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNMATCHED = "unmatched"
CHECK_LAYERS = ("near", "redis", "database")

# --- read on scrape: the registry of collectors ----------------------------------------------

CollectFn = Callable[[], Iterable[Metric]]
_collectors: dict[str, CollectFn] = {}


def register_collector(name: str, fn: CollectFn) -> None:
    """Add a scrape-time collector (keyed by name: importing a module twice adds nothing)."""
    _collectors[name] = fn


def registered_collectors() -> dict[str, CollectFn]:
    return dict(_collectors)


def autodiscover() -> None:
    autodiscover_modules("metrics")


def gauge(name: str, documentation: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=list(labels))


class _AppCollectors(Collector):
    def collect(self) -> Iterable[Metric]:
        for name, fn in sorted(_collectors.items()):
            try:
                metrics = list(fn())
            except Exception:  # noqa: BLE001 - one failing source must not blank the scrape
                logger.warning("metrics collector %s failed", name, exc_info=True)
                COLLECTOR_ERRORS.labels(collector=name).inc()
                continue
            yield from metrics


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def exposition() -> bytes:
    """The text a scrape gets: the process (or all processes') counters plus the collectors."""
    registry = CollectorRegistry()
    # The collectors first: a failing one is counted in this very scrape.
    registry.register(_AppCollectors())
    if multiprocess_dir():
        MultiProcessCollector(registry)
    else:
        registry.register(_DefaultRegistryProxy())
    return generate_latest(registry)


class _DefaultRegistryProxy(Collector):
    """The default registry's metrics (this process's counters) inside a scrape registry."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


# --- core collectors: queue depth and the worker heartbeat ---------------------------------


def _redis_broker():
    import redis

    return redis.Redis.from_url(
        settings.CELERY_BROKER_URL, socket_timeout=1, socket_connect_timeout=1
    )


# Celery's Redis transport keeps a queue's messages in a list named after it (and, with
# priorities, in "<queue>\x06\x16<priority>" lists).
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


def collect_queues() -> Iterable[Metric]:
    if not settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        return []
    queues = sorted(set(settings.METRICS_QUEUES))
    client = _redis_broker()
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        for suffix in _PRIORITY_SUFFIXES:
            pipe.llen(queue + suffix)
    lengths = pipe.execute()
    depth = gauge(
        "tollgate_celery_queue_length", "Messages waiting in each Celery queue.", ["queue"]
    )
    per = len(_PRIORITY_SUFFIXES)
    for i, queue in enumerate(queues):
        depth.add_metric([queue], sum(lengths[i * per : (i + 1) * per]))
    from .health import HEARTBEAT_KEY

    raw = client.get(HEARTBEAT_KEY)
    out: list[Metric] = [depth]
    if raw is not None:
        beat = gauge(
            "tollgate_worker_heartbeat_timestamp_seconds",
            "When a Celery worker last ran the heartbeat task (Unix time).",
        )
        beat.add_metric([], float(raw))
        out.append(beat)
    return out


register_collector("core.queues", collect_queues)


# --- the HTTP middleware -----------------------------------------------------------------


def route_of(request: HttpRequest) -> str:
    """The URL pattern's name (``namespace:name``), or its route; ``unmatched`` for a 404."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        # A middleware answered before URL resolution (a sign-in redirect): resolve it here.
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return UNMATCHED
    if match.view_name:
        return match.view_name
    return match.route or UNMATCHED


class MetricsMiddleware:
    """Count every request by route, method and status, and time it. Outermost middleware."""

    METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        start = time.perf_counter()
        status = 500
        try:
            response = self.get_response(request)
            status = response.status_code
            return response
        finally:
            elapsed = time.perf_counter() - start
            method = request.method if request.method in self.METHODS else "other"
            route = route_of(request)
            HTTP_REQUESTS.labels(route=route, method=method, status=str(status)).inc()
            HTTP_DURATION.labels(route=route, method=method).observe(elapsed)


# --- Celery signals ------------------------------------------------------------------------

_task_started: dict[str, float] = {}


def _task_name(sender: Any, task: Any = None) -> str:
    obj = task if task is not None else sender
    name = getattr(obj, "name", None) or str(obj)
    return name[:120]


def _on_prerun(sender=None, task_id=None, task=None, **kwargs) -> None:
    if task_id:
        _task_started[task_id] = time.perf_counter()


def _on_postrun(sender=None, task_id=None, task=None, state=None, **kwargs) -> None:
    name = _task_name(sender, task)
    TASK_RUNS.labels(task=name, state=str(state or "UNKNOWN")).inc()
    started = _task_started.pop(task_id, None) if task_id else None
    if started is not None:
        TASK_DURATION.labels(task=name).observe(time.perf_counter() - started)


def _on_failure(sender=None, **kwargs) -> None:
    TASK_FAILURES.labels(task=_task_name(sender)).inc()


def _on_retry(sender=None, **kwargs) -> None:
    TASK_RETRIES.labels(task=_task_name(sender)).inc()


def connect_celery_signals() -> None:
    from celery import signals

    signals.task_prerun.connect(_on_prerun, dispatch_uid="metrics-prerun", weak=False)
    signals.task_postrun.connect(_on_postrun, dispatch_uid="metrics-postrun", weak=False)
    signals.task_failure.connect(_on_failure, dispatch_uid="metrics-failure", weak=False)
    signals.task_retry.connect(_on_retry, dispatch_uid="metrics-retry", weak=False)


# --- the /metrics view -----------------------------------------------------------------------


@lru_cache(maxsize=8)
def _networks(spec: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in spec if cidr.strip())


def _from_allowed_network(request: HttpRequest) -> bool:
    try:
        addr = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(addr in net for net in _networks(tuple(settings.METRICS_ALLOWED_NETWORKS)))


def _refuse(status: int, detail: str) -> HttpResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="tollgate-metrics"'} if status == 401 else {}
    return HttpResponse(detail + "\n", status=status, content_type="text/plain", headers=headers)


@csrf_exempt
@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition for a caller with the metrics token or from an allowed network.

    A request that presents a token must present the right one (401 otherwise, wherever it
    comes from); without one, only an allowed network is served (403 otherwise, 401 when a
    token is configured so the caller knows one would do).
    """
    if request.method not in ("GET", "HEAD"):
        return HttpResponse(status=405, headers={"Allow": "GET, HEAD"})
    header = request.META.get("HTTP_AUTHORIZATION", "")
    expected = settings.METRICS_TOKEN
    if header:
        scheme, _, secret = header.partition(" ")
        if not (
            expected
            and scheme.lower() == "bearer"
            and hmac.compare_digest(secret.strip().encode(), expected.encode())
        ):
            return _refuse(401, "invalid metrics token")
    elif not _from_allowed_network(request):
        if expected:
            return _refuse(401, "metrics token required")
        return _refuse(403, "metrics are served to allowed networks only")
    return HttpResponse(exposition(), content_type=CONTENT_TYPE)
