"""The authorization check (A10): may principal P use entitlement E of service S, now?

Decision: allowed only when the principal exists and is active, the service and the
entitlement exist, and P holds an *active* grant of E whose ``ends_at`` is unset or in
the future. An expired grant is refused even before the expiry task has revoked it.
Every denial names its cause in ``reason``.

Cache (Redis, the ``default`` cache): each answer is stored under
``(principal as given, service, entitlement)`` together with two version tokens:

* a per-principal version (``pv:id:<id>`` and ``pv:email:<email>``), replaced in
  ``transaction.on_commit`` whenever one of the principal's grants is saved (every grant
  transition goes through ``portal.core.state.transition`` → ``save()``), so the very next
  check after a revocation commits misses the cache and reads the database;
* a global version, replaced when a service, an entitlement or a user (other than a
  login stamp) changes, since those change what names resolve to.

A lookup is one ``MGET`` of the three keys; the answer is used only when both stored
versions equal the current ones. Versions are read *before* the database, so an answer
computed while a grant changed is stored under the old version and never served.
Every write of these keys also tells the per-process near caches
(:mod:`portal.core.nearcache`) through which the check API's hot path reads them.
When Redis is unavailable every check is answered from the database. Answers also
carry a TTL (``CHECK_CACHE_TTL``, default 300 s, each answer's spread by ±20 % so that a
warmed working set does not expire in one burst) which bounds staleness in the one case
neither versions nor the server-life mark below can help: the committing process could not
reach Redis to replace the versions while Redis itself stayed up (a partition between that
process and Redis; a restarted Redis is caught by the life mark). A longer TTL means fewer database reads in the steady state (every
answer is re-read once per TTL); a shorter one a tighter bound in that failure case.

Redis going back in time (restarted from a snapshot, restored, failed over to a lagging
replica) would bring back answers and version keys together, consistent with each other and
older than a revocation. Every read therefore fetches ``LIFE_KEY`` too: the run id of the
Redis server life that wrote the namespace (``portal.core.cache``). Each connection learns
the server's run id when it connects; a mismatch (or no mark) drops every cached value and
near copy before anything is served, and the batch is answered from the database. A
revocation that committed is thus never undone by a Redis that lost it.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_save
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import User
from portal.core import metrics
from portal.core.cache import LIFE_KEY, same_life
from portal.core.nearcache import delete_many_notify, set_many_notify

from .models import Entitlement, Grant, Service

logger = logging.getLogger(__name__)

MAX_BATCH = 100
KEY_PREFIX = "check:"
GLOBAL_VERSION_KEY = KEY_PREFIX + "gv"
VERSION_TTL = 7 * 24 * 3600

# Counters for the benchmark and for operators (per process).
STATS = {"hits": 0, "misses": 0, "errors": 0}
# ... and for Prometheus (portal.core.metrics), bound once: the hot path only increments.
_ANSWERED_BY = {layer: metrics.CHECK_ANSWER_SOURCE.labels(layer) for layer in metrics.CHECK_LAYERS}
_DECIDED = {d: metrics.CHECK_DECISIONS.labels(d) for d in ("allowed", "denied", "error")}
_TIMED = {k: metrics.CHECK_DURATION.labels(k) for k in ("single", "batch")}


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    grant: int | None = None
    expires_at: datetime | None = None

    def as_dict(self) -> dict:
        return {
            "allowed": self.allowed,
            "reason": self.reason,
            "grant": self.grant,
            "expires_at": self.expires_at,
        }


def _ttl() -> int:
    base = int(getattr(settings, "CHECK_CACHE_TTL", 300))
    return max(1, round(base * random.uniform(0.8, 1.2)))


# --- decision from the database ------------------------------------------------------


def _principal_lookup(principal: str):
    """A user by id (all digits) or e-mail (case-insensitive); None when unknown."""
    qs = User.objects.only("id", "email", "is_active")
    if principal.isdigit():
        return qs.filter(pk=int(principal)).first()
    return qs.filter(email=principal.lower()).first()


def decide_from_db(*, principal: str, service: str, entitlement: str, now=None) -> Decision:
    now = now or timezone.now()
    user = _principal_lookup(principal)
    if user is None:
        return Decision(False, f"unknown principal: {principal!r}")
    if not Service.objects.filter(slug=service).exists():
        return Decision(False, f"unknown service: {service!r}")
    ent = Entitlement.objects.filter(service__slug=service, slug=entitlement).only("id").first()
    if ent is None:
        return Decision(False, f"unknown entitlement: {entitlement!r} on service {service!r}")
    if not user.is_active:
        return Decision(False, "the principal is not active")
    # At most one held grant exists (a partial unique constraint); the newest grant is
    # the held one when there is one, else the last ended one (its status is the reason).
    grant = (
        Grant.objects.filter(principal_id=user.pk, entitlement_id=ent.pk)
        .only("id", "status", "ends_at")
        .order_by("-id")
        .first()
    )
    if grant is None:
        return Decision(False, "no grant: the principal does not hold this entitlement")
    if grant.status != Grant.Status.ACTIVE:
        return Decision(False, f"grant #{grant.pk} is {grant.status}, not active", grant.pk)
    if grant.ends_at is not None and grant.ends_at <= now:
        return Decision(
            False, f"grant #{grant.pk} expired at {grant.ends_at.isoformat()}", grant.pk
        )
    return Decision(True, f"active grant #{grant.pk}", grant.pk, grant.ends_at)


# --- cache -----------------------------------------------------------------------------


def _norm(principal: str) -> str:
    return principal if principal.isdigit() else principal.lower()


def _pv_key(principal: str) -> str:
    p = _norm(principal)
    return f"{KEY_PREFIX}pv:{'id' if p.isdigit() else 'email'}:{p}"


def _answer_key(principal: str, service: str, entitlement: str) -> str:
    # Slugs cannot contain "|"; e-mails may not contain whitespace (memcached-safe too).
    return f"{KEY_PREFIX}a:{_norm(principal)}|{service}|{entitlement}"


def _encode(decision: Decision, gv: str, pv: str) -> dict:
    exp = decision.expires_at.isoformat() if decision.expires_at else None
    return {"g": gv, "p": pv, "a": decision.allowed, "r": decision.reason,
            "id": decision.grant, "e": exp}  # fmt: skip


def _decode(value: dict) -> Decision:
    exp = parse_datetime(value["e"]) if value.get("e") else None
    return Decision(value["a"], value["r"], value["id"], exp)


def _ensure_version(key: str, current) -> str:
    if current is not None:
        return current
    cache.add(key, uuid.uuid4().hex, timeout=VERSION_TTL)
    value = cache.get(key)
    if value is None:  # evicted at once: never cache under an unknown version
        raise LookupError(key)
    return value


def cache_keys(checks: list[tuple[str, str, str]]) -> list[str]:
    """The cache keys ``check_many`` reads for ``checks`` (one MGET)."""
    keys: list[str] = [LIFE_KEY, GLOBAL_VERSION_KEY]
    for principal, service, entitlement in checks:
        keys.append(_pv_key(principal))
        keys.append(_answer_key(principal, service, entitlement))
    return keys


def check_many(
    checks: list[tuple[str, str, str]],
    *,
    now=None,
    prefetched: dict | None = None,
    layer: str = "redis",
) -> list[Decision]:
    """Decide each (principal, service, entitlement); one MGET for the whole batch.

    ``prefetched``: the result of ``cache.get_many(cache_keys(checks) + ...)`` when the
    caller already read the keys (the hot path reads them with the token's key); ``layer``
    names where they came from (``near`` or ``redis``), for the metrics.
    """
    start = time.perf_counter()
    try:
        decisions = _check_many(checks, now=now, prefetched=prefetched, layer=layer)
    except Exception:
        _DECIDED["error"].inc()
        raise
    _TIMED["single" if len(checks) == 1 else "batch"].observe(time.perf_counter() - start)
    allowed = sum(1 for d in decisions if d.allowed)
    if allowed:
        _DECIDED["allowed"].inc(allowed)
    if allowed < len(decisions):
        _DECIDED["denied"].inc(len(decisions) - allowed)
    return decisions


def _check_many(
    checks: list[tuple[str, str, str]], *, now, prefetched: dict | None, layer: str
) -> list[Decision]:
    now = now or timezone.now()
    try:
        found = prefetched if prefetched is not None else cache.get_many(cache_keys(checks))
        if not same_life(found):
            # Redis came back with an older state (or none): every cached answer and near
            # copy was dropped; this batch is answered from the database.
            _ANSWERED_BY["database"].inc(len(checks))
            return [
                decide_from_db(principal=p, service=s, entitlement=e, now=now) for p, s, e in checks
            ]
        gv = _ensure_version(GLOBAL_VERSION_KEY, found.get(GLOBAL_VERSION_KEY))
    except Exception:  # noqa: BLE001 - Redis down or evicting: the database answers
        STATS["errors"] += 1
        _ANSWERED_BY["database"].inc(len(checks))
        logger.warning("check cache unavailable; answering from the database", exc_info=True)
        return [
            decide_from_db(principal=p, service=s, entitlement=e, now=now) for p, s, e in checks
        ]
    results: list[Decision] = []
    to_store: dict[str, dict] = {}
    for principal, service, entitlement in checks:
        pkey, akey = _pv_key(principal), _answer_key(principal, service, entitlement)
        cached = found.get(akey)
        try:
            pv = _ensure_version(pkey, found.get(pkey))
        except Exception:  # noqa: BLE001
            pv = None
        if (
            cached is not None
            and pv is not None
            and cached.get("g") == gv
            and cached.get("p") == pv
        ):
            decision = _decode(cached)
            if not (decision.allowed and decision.expires_at and decision.expires_at <= now):
                STATS["hits"] += 1
                _ANSWERED_BY[layer].inc()
                results.append(decision)
                continue
        STATS["misses"] += 1
        _ANSWERED_BY["database"].inc()
        decision = decide_from_db(
            principal=principal, service=service, entitlement=entitlement, now=now
        )
        results.append(decision)
        if pv is not None:
            to_store[akey] = _encode(decision, gv, pv)
    if to_store:
        try:
            # one TTL per batch (spread across calls); near caches drop older answers
            set_many_notify(to_store, timeout=_ttl())
        except Exception:  # noqa: BLE001
            STATS["errors"] += 1
            logger.warning("check cache write failed", exc_info=True)
    return results


def check_one(*, principal: str, service: str, entitlement: str, now=None) -> Decision:
    return check_many([(principal, service, entitlement)], now=now)[0]


# --- invalidation (signals are plumbing only: they replace version tokens) -----------


def _replace_versions(keys: list[str]) -> None:
    try:
        set_many_notify({k: uuid.uuid4().hex for k in keys}, timeout=VERSION_TTL)
    except Exception:  # noqa: BLE001 - answers expire after CHECK_CACHE_TTL anyway
        logger.warning("check cache invalidation failed for %s", keys, exc_info=True)
        with contextlib.suppress(Exception):
            delete_many_notify(keys)


def bump_principal(user_id: int, email: str | None = None) -> None:
    def _bump() -> None:
        addr = email
        if addr is None:
            addr = User.objects.filter(pk=user_id).values_list("email", flat=True).first()
        keys = [_pv_key(str(user_id))]
        if addr:
            keys.append(_pv_key(addr))
        _replace_versions(keys)

    transaction.on_commit(_bump, robust=True)


def bump_global() -> None:
    transaction.on_commit(lambda: _replace_versions([GLOBAL_VERSION_KEY]), robust=True)


def _on_grant_saved(sender, instance: Grant, **kwargs) -> None:
    principal = instance._state.fields_cache.get("principal")
    bump_principal(instance.principal_id, principal.email if principal is not None else None)


def _on_catalog_saved(sender, instance, **kwargs) -> None:
    bump_global()


def _on_user_saved(sender, instance: User, update_fields=None, **kwargs) -> None:
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return  # a sign-in changes nothing a check reads
    bump_global()


def connect_signals() -> None:
    post_save.connect(_on_grant_saved, sender=Grant, dispatch_uid="check-grant")
    post_save.connect(_on_catalog_saved, sender=Service, dispatch_uid="check-service")
    post_save.connect(_on_catalog_saved, sender=Entitlement, dispatch_uid="check-entitlement")
    post_save.connect(_on_user_saved, sender=User, dispatch_uid="check-user")


connect_signals()
