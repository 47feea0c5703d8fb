"""The SIEM stream: ship new audit events, in seq order, at least once.

A :class:`~audit.models.SiemCursor` row records the last seq delivered. A batch is read
after the cursor, shipped (webhook POST or JSON-lines file append, no transaction open),
and only then is the cursor moved on, with a compare-and-set on its old value. A crash
between the ship and the move re-ships that one batch (at least once); a failed ship
leaves the cursor where it was, so nothing is skipped.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from .chain import canonical_json
from .exporting import EXPORT_FIELDS, event_row
from .models import AuditEvent, SiemCursor

logger = logging.getLogger("portal.audit.siem")

DEFAULT_STREAM = "siem"


class ShipError(Exception):
    """The destination did not take the batch; the cursor stays put."""


@dataclass
class ShipResult:
    shipped: int
    last_seq: int
    error: str | None = None


def _post_webhook(url: str, events: list[dict[str, Any]], *, timeout: float) -> None:
    body = json.dumps({"events": events}, ensure_ascii=False, default=str).encode("utf-8")
    if not url.lower().startswith(("http://", "https://")):
        raise ShipError("AUDIT_SIEM_WEBHOOK_URL must be an http(s) URL")
    req = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "tollgate-audit-siem"},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:  # noqa: S310
            status = response.status
    except urllib.error.HTTPError as exc:
        raise ShipError(f"webhook answered {exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise ShipError(f"webhook unreachable: {exc}") from exc
    if not 200 <= status < 300:
        raise ShipError(f"webhook answered {status}")


def _append_file(path: Path | str, events: list[dict[str, Any]]) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write("".join(canonical_json(e) + "\n" for e in events))
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise ShipError(f"cannot append to {path}: {exc}") from exc


def ship_batch(events: list[dict[str, Any]]) -> None:
    """Deliver one batch to every configured destination, or raise :class:`ShipError`."""
    url = settings.AUDIT_SIEM_WEBHOOK_URL
    path = settings.AUDIT_SIEM_FILE
    if url:
        _post_webhook(url, events, timeout=settings.AUDIT_SIEM_TIMEOUT)
    if path:
        _append_file(path, events)


def siem_configured() -> bool:
    return bool(settings.AUDIT_SIEM_WEBHOOK_URL or settings.AUDIT_SIEM_FILE)


def _advance_cursor(*, name: str, old_seq: int, new_seq: int) -> bool:
    """Compare-and-set: move the cursor only from where this run found it."""
    with transaction.atomic():
        return bool(SiemCursor.objects.filter(name=name, last_seq=old_seq).update(last_seq=new_seq))


def siem_ship_pending(
    *, name: str = DEFAULT_STREAM, batch_size: int | None = None, max_batches: int = 50
) -> ShipResult:
    """Ship events after the cursor, batch by batch, until caught up or a ship fails.

    Callers hold the stream's advisory lock (the beat task does), so one run ships at a time.
    """
    batch_size = batch_size or settings.AUDIT_SIEM_BATCH_SIZE
    cursor, _ = SiemCursor.objects.get_or_create(name=name)
    last_seq = cursor.last_seq
    shipped = 0
    for _ in range(max_batches):
        events = [
            event_row(v)
            for v in AuditEvent.objects.filter(seq__gt=last_seq)
            .order_by("seq")
            .values(*EXPORT_FIELDS)[:batch_size]
        ]
        if not events:
            break
        try:
            ship_batch(events)
        except ShipError as exc:
            logger.warning(
                "audit SIEM ship failed; will retry",
                extra={"stream": name, "after_seq": last_seq, "error": str(exc)},
            )
            return ShipResult(shipped=shipped, last_seq=last_seq, error=str(exc))
        new_seq = events[-1]["seq"]
        if not _advance_cursor(name=name, old_seq=last_seq, new_seq=new_seq):
            # Another shipper moved the cursor (the lock was bypassed): stop, never go back.
            logger.warning("audit SIEM cursor moved under us", extra={"stream": name})
            break
        shipped += len(events)
        last_seq = new_seq
    return ShipResult(shipped=shipped, last_seq=last_seq)
