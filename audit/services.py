"""The one write path into the audit trail: :func:`audit_record`.

Services call it inside their own transaction, so the event commits (or rolls back)
with the change it describes. The append is serialised by locking the ``ChainHead``
row (an UPDATE takes a row lock on PostgreSQL and the write lock on SQLite), so
concurrent writers extend a single chain.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connection, models, transaction
from django.utils import timezone
from django.utils.ipv6 import clean_ipv6_address

from portal.core import context, locks
from portal.core.actors import actor_label, actor_user
from portal.core.errors import ValidationError as DomainValidationError

from . import checkpoints, exporting
from .chain import GENESIS_HASH, canonical_json, compute_hash
from .models import AuditEvent, ChainHead, Verification
from .registry import ACTIONS, AUDIT_EXPORTED

logger = logging.getLogger("portal.audit")


def _normalise(value: Any) -> Any:
    """Make a before/after value JSON-exact, so what is stored is what was hashed."""
    if value is None:
        return None
    return json.loads(canonical_json(value))


def _normalise_ip(ip: str | None) -> str | None:
    """The address exactly as the database will store (and return) it, or None if invalid.

    ``GenericIPAddressField`` rewrites IPv6 addresses (``2001:DB8:0::1`` → ``2001:db8::1``)
    before saving; hashing the raw value would make a genuine row look tampered with. An
    unparseable address is dropped rather than failing the audited change.
    """
    if not ip:
        return None
    try:
        if ":" in ip:
            return clean_ipv6_address(ip)
        return str(ipaddress.IPv4Address(ip))
    except (ValueError, DjangoValidationError):
        return None


def _actor_fields(actor) -> tuple[int | None, str]:
    """(user id, label): a person's id and username, or no id and ``system:<name>``."""
    label = actor_label(actor)  # a string actor raises TypeError here
    person = actor_user(actor)
    if person is not None and getattr(person, "is_authenticated", False):
        return person.pk, label
    return None, label


_HEAD_TABLE = ChainHead._meta.db_table


def _lock_and_bump_head() -> tuple[int, str]:
    """Take the chain lock and the next sequence number in one statement.

    The UPDATE holds a row lock on PostgreSQL (the write lock on SQLite) until commit, so
    concurrent appends queue here and extend one chain. Returns (new seq, previous hash).
    """
    sql = f"UPDATE {_HEAD_TABLE} SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash"  # noqa: S608 (constant table name)
    with connection.cursor() as cursor:
        cursor.execute(sql)
        row = cursor.fetchone()
        if row is None:
            ChainHead.objects.get_or_create(pk=1, defaults={"seq": 0, "hash": GENESIS_HASH})
            cursor.execute(sql)
            row = cursor.fetchone()
    return int(row[0]), row[1]


@functools.cache
def _event_sql() -> tuple[list[models.Field], str, str]:
    """The event's columns and the two one-statement appends (PostgreSQL, data-modifying
    CTEs): with the head already locked by this transaction, insert the event and set the
    head's hash; and the compare-and-swap append (see :func:`_append`)."""
    qn = connection.ops.quote_name
    fields = [f for f in AuditEvent._meta.concrete_fields if not f.primary_key]
    cols = ", ".join(qn(str(f.column)) for f in fields)
    # Typed placeholders (INSERT ... SELECT does not give its values the column types); text
    # for strings, so a value too long for its column fails as in an INSERT, never truncated.
    typed = ", ".join(
        "%s::" + ("text" if f.get_internal_type() in TEXT_TYPES else str(f.db_type(connection)))
        for f in fields
    )
    table, pk = qn(AuditEvent._meta.db_table), qn(str(AuditEvent._meta.pk.column))
    locked = (
        f"WITH event AS (INSERT INTO {table} ({cols}) VALUES ({typed}) RETURNING {pk}) "  # noqa: S608 (model names)
        f"UPDATE {_HEAD_TABLE} SET hash = %s WHERE id = 1 RETURNING (SELECT {pk} FROM event)"
    )
    swap = (
        f"WITH head AS (UPDATE {_HEAD_TABLE} SET seq = %s, hash = %s "  # noqa: S608 (model names)
        f"WHERE id = 1 AND seq = %s AND hash = %s RETURNING id) "
        f"INSERT INTO {table} ({cols}) SELECT {typed} FROM head RETURNING {pk}"
    )
    return fields, locked, swap


TEXT_TYPES = ("CharField", "TextField")


def _append(event: AuditEvent, row: dict[str, Any]) -> None:
    """Give ``event`` its place in the chain and write it, with the head, on PostgreSQL in one
    statement when the head is where this connection last left it, else in two.

    The one-statement path is a compare-and-swap: the head moves to the event's seq and hash
    only if it still holds the seq and hash this connection last wrote or read, and the event
    is inserted only if the head moved. The UPDATE takes the head's row lock exactly where
    :func:`_lock_and_bump_head` would, so concurrent appends still queue on it and extend one
    chain; a stale guess (another writer appended, or a rollback undid the last append)
    inserts nothing and falls back to locking and reading the head first.
    """
    fields, locked, swap = _event_sql()
    guess = getattr(connection, "_tollgate_audit_head", None)
    with connection.cursor() as cursor:
        if guess is not None:
            seq, prev_hash = guess[0] + 1, guess[1]
            row["seq"] = seq
            digest = compute_hash(prev_hash, row)
            event.seq, event.prev_hash, event.hash = seq, prev_hash, digest
            values = [f.get_db_prep_save(getattr(event, f.attname), connection) for f in fields]
            cursor.execute(swap, [seq, digest, guess[0], prev_hash, *values])
            found = cursor.fetchone()
            if found is not None:
                locks.lock_note("audit.ChainHead", "head")
                event.pk = found[0]
                connection._tollgate_audit_head = (seq, digest)  # type: ignore[attr-defined]
                return
        seq, prev_hash = _lock_and_bump_head()
        row["seq"] = seq
        digest = compute_hash(prev_hash, row)
        event.seq, event.prev_hash, event.hash = seq, prev_hash, digest
        values = [f.get_db_prep_save(getattr(event, f.attname), connection) for f in fields]
        cursor.execute(locked, [*values, digest])
        event.pk = cursor.fetchone()[0]
    connection._tollgate_audit_head = (seq, digest)  # type: ignore[attr-defined]


@dataclass
class _Batch:
    """Events appended inside :func:`audit_batch`, written when it ends."""

    seq: int | None = None  # the last sequence number given out (None: head not taken yet)
    hash: str = ""
    events: list[AuditEvent] = field(default_factory=list)
    payloads: list[dict[str, Any]] = field(default_factory=list)


_batch: ContextVar[_Batch | None] = ContextVar("tollgate_audit_batch", default=None)


@contextmanager
def audit_batch() -> Iterator[None]:
    """Write the events of one transaction's block in bulk: the same chain, fewer statements.

    Inside the block, :func:`audit_record` takes the chain head once (the lock is held until
    the transaction ends, as for a single event), hashes each event onto the previous one in
    memory, and the block's end inserts them all and moves the head once. An exception leaves
    the block with nothing written (the caller's transaction or savepoint rolls back the head).

    It must be entered inside ``transaction.atomic()`` and must not contain a savepoint that is
    rolled back while the block goes on (its events would be kept): wrap each unit of work,
    and its own ``atomic()``, in its own batch. Used by the demo seed and bulk back-fills; a
    nested batch joins the outer one.
    """
    if _batch.get() is not None:
        yield
        return
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_batch() needs a transaction: enter it inside atomic()")
    batch = _Batch()
    token = _batch.set(batch)
    try:
        yield
    finally:
        _batch.reset(token)
    _flush(batch)


def _flush(batch: _Batch) -> None:
    if not batch.events:
        return
    AuditEvent.objects.bulk_create(batch.events, batch_size=500)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_HEAD_TABLE} SET seq = %s, hash = %s WHERE id = 1",  # noqa: S608
            [batch.seq, batch.hash],
        )
    for payload in batch.payloads:
        transaction.on_commit(partial(_log_event, payload))


def _log_event(payload: dict[str, Any]) -> None:
    logger.info("audit event", extra={"audit": payload})


def _next_in_batch(batch: _Batch) -> tuple[int, str]:
    if batch.seq is None:
        batch.seq, batch.hash = _lock_and_bump_head()  # the first event takes the lock
        return batch.seq, batch.hash
    batch.seq += 1
    return batch.seq, batch.hash


def audit_record(
    *,
    actor,
    action: str,
    target: models.Model | None = None,
    target_type: str = "",
    target_id: str | int = "",
    before: Any = None,
    after: Any = None,
    reason: str = "",
) -> AuditEvent:
    """Append one event. ``actor`` is a user, a ``SystemActor`` or None ("system")."""
    if action not in ACTIONS:
        raise ValueError(f"unregistered audit action {action!r}; add it to an audit registry")
    if target is not None:
        target_type = target_type or target._meta.label_lower
        target_id = target.pk
    actor_id, actor_label = _actor_fields(actor)
    ctx = context.current()
    row = {
        "seq": None,  # set when the event takes its place in the chain
        "occurred_at": timezone.now(),
        "actor_id": actor_id,
        "actor_label": actor_label,
        "action": action,
        "target_type": target_type,
        "target_id": str(target_id) if target_id != "" else "",
        "before": _normalise(before),
        "after": _normalise(after),
        "reason": reason or "",
        "request_id": ctx.request_id or "",
        "ip": _normalise_ip(ctx.ip),
        "user_agent": ctx.user_agent or "",
    }
    batch = _batch.get()
    if batch is not None:
        return _record_in_batch(batch, row)
    # savepoint=False: inside a service's transaction no savepoint is needed (a failure here
    # fails the whole change); outside one, this opens its own transaction.
    with transaction.atomic(savepoint=False):
        if connection.vendor == "postgresql":
            event = AuditEvent(**{k: v for k, v in row.items() if k != "seq"})
            _append(event, row)
            event._state.adding, event._state.db = False, connection.alias
            digest = event.hash
        else:
            row["seq"], prev_hash = _lock_and_bump_head()
            digest = compute_hash(prev_hash, row)
            event = AuditEvent(prev_hash=prev_hash, hash=digest, **row)
            event.save(force_insert=True)
            with connection.cursor() as cursor:
                cursor.execute(f"UPDATE {_HEAD_TABLE} SET hash = %s WHERE id = 1", [digest])  # noqa: S608
    payload = {
        "seq": event.seq,
        "hash": digest,
        **row,
        "occurred_at": row["occurred_at"].isoformat(),
    }
    transaction.on_commit(lambda: logger.info("audit event", extra={"audit": payload}))
    return event


def _record_in_batch(batch: _Batch, row: dict[str, Any]) -> AuditEvent:
    seq, prev_hash = _next_in_batch(batch)
    row["seq"] = seq
    digest = compute_hash(prev_hash, row)
    event = AuditEvent(prev_hash=prev_hash, hash=digest, **row)
    batch.hash = digest
    batch.events.append(event)
    batch.payloads.append(
        {"seq": seq, "hash": digest, **row, "occurred_at": row["occurred_at"].isoformat()}
    )
    return event


def audit_checkpoint(*, note: str = "interval") -> dict[str, Any]:
    """Write the chain head to the log, the checkpoint file and ``AUDIT_CHECKPOINT_URL``.

    A chain rewritten from the genesis row would verify on its own; the checkpoints
    kept outside the database are what catch it (``verify_audit`` compares them).
    """
    head = ChainHead.objects.filter(pk=1).values("seq", "hash").first() or {
        "seq": 0,
        "hash": GENESIS_HASH,
    }
    checkpoint = {
        "seq": head["seq"],
        "hash": head["hash"],
        "at": timezone.now().isoformat(),
        "note": note,
    }
    logger.info("audit chain head", extra={"audit_checkpoint": checkpoint})
    if settings.AUDIT_CHECKPOINT_FILE:
        path = str(settings.AUDIT_CHECKPOINT_FILE)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(canonical_json(checkpoint) + "\n")
    checkpoints.deliver(checkpoint)  # AUDIT_CHECKPOINT_URL; a failure is logged, never raised
    return checkpoint


def audit_verification_record(*, result) -> Verification:
    """Keep the outcome of a chain verification (a :class:`audit.verify.VerifyResult`)."""
    detail = (
        str(result.broken) if result.broken is not None else "; ".join(result.checkpoint_problems)
    )
    return Verification.objects.create(
        at=timezone.now(), ok=result.ok, checked=result.checked, detail=detail[:2000]
    )


def audit_export_create(
    *,
    actor,
    fmt: str,
    since=None,
    until=None,
    file_name: str | None = None,
    output=None,
) -> tuple[bytes | None, dict[str, Any]]:
    """Export ``since <= occurred_at < until`` and record that it was exported.

    With ``output`` the file and ``<output>.manifest.json`` are written and no bytes are
    returned; otherwise the bytes and the manifest are returned (for a download). The
    ``audit.exported`` event is written after the rows are read, so it is never inside
    the export it describes.
    """
    if fmt not in exporting.FORMATS:
        raise DomainValidationError(f"unknown export format {fmt!r}", field="format")
    if since is not None and until is not None and since >= until:
        raise DomainValidationError("the start of the range must be before its end", field="until")
    data: bytes | None
    if output is not None:
        manifest = exporting.export_to_file(fmt=fmt, output=output, since=since, until=until)
        data = None
    else:
        name = file_name or f"audit-export.{fmt}"
        data, manifest = exporting.export_to_bytes(
            fmt=fmt, file_name=name, since=since, until=until
        )
    audit_record(
        actor=actor,
        action=AUDIT_EXPORTED,
        target_type="audit.export",
        target_id=manifest["sha256"][:16],
        after={
            "format": fmt,
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
            **{k: manifest[k] for k in ("file", "sha256", "count", "first_seq", "last_seq")},
        },
    )
    return data, manifest
