"""Hashing and verification of the audit chain (pure functions, no ORM writes)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings

GENESIS_HASH = "0" * 64
HASHED_FIELDS = (
    "seq",
    "occurred_at",
    "actor_id",
    "actor_label",
    "action",
    "target_type",
    "target_id",
    "before",
    "after",
    "reason",
    "request_id",
    "ip",
    "user_agent",
)


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def canonical_payload(row: Mapping[str, Any]) -> str:
    payload = {}
    for name in HASHED_FIELDS:
        value = row.get(name)
        if name == "occurred_at" and value is not None and not isinstance(value, str):
            value = value.isoformat()
        payload[name] = value
    return canonical_json(payload)


def chain_key() -> bytes:
    """The HMAC key of the chain (settings.AUDIT_CHAIN_KEY, from the environment)."""
    key = settings.AUDIT_CHAIN_KEY
    if not key:
        raise RuntimeError(
            "AUDIT_CHAIN_KEY is empty: the audit chain cannot be written or verified"
        )
    return key.encode("utf-8")


def compute_hash(prev_hash: str, row: Mapping[str, Any], *, key: bytes | None = None) -> str:
    """HMAC-SHA256 of the previous hash and the row: without the key, nobody who can write the
    table can recompute a chain that verifies."""
    message = (prev_hash + "\n" + canonical_payload(row)).encode()
    return hmac.new(key or chain_key(), message, hashlib.sha256).hexdigest()


def sign(payload: Mapping[str, Any], *, key: bytes | None = None) -> str:
    """HMAC-SHA256 of a JSON document (an export manifest without its ``signature``)."""
    body = {name: value for name, value in payload.items() if name != "signature"}
    return hmac.new(key or chain_key(), canonical_json(body).encode(), hashlib.sha256).hexdigest()


def signature_matches(payload: Mapping[str, Any], *, key: bytes | None = None) -> bool:
    return hmac.compare_digest(str(payload.get("signature", "")), sign(payload, key=key))


@dataclass(frozen=True)
class Break:
    seq: int
    event_id: int | None
    reason: str

    def __str__(self) -> str:
        return f"audit chain broken at seq {self.seq} (event id {self.event_id}): {self.reason}"


def verify_rows(
    rows: Iterable[Mapping[str, Any]], *, start_prev_hash: str = GENESIS_HASH, start_seq: int = 1
) -> tuple[int, str, Break | None]:
    """Walk rows in seq order. Returns (rows checked, last hash, first break or None)."""
    prev = start_prev_hash
    expected_seq = start_seq
    count = 0
    for row in rows:
        seq = row["seq"]
        if seq != expected_seq:
            return (
                count,
                prev,
                Break(
                    expected_seq,
                    row.get("id"),
                    f"sequence gap: expected {expected_seq}, found {seq} (rows deleted or inserted)",
                ),
            )
        if row["prev_hash"] != prev:
            return (
                count,
                prev,
                Break(seq, row.get("id"), "prev_hash does not match the previous row's hash"),
            )
        recomputed = compute_hash(prev, row)
        if recomputed != row["hash"]:
            return (
                count,
                prev,
                Break(seq, row.get("id"), "content does not match its hash (row edited)"),
            )
        prev = row["hash"]
        expected_seq += 1
        count += 1
    return count, prev, None
