"""Parse CloudTrail-style event files. Pure: no database, no Django models.

Accepted layouts (optionally gzip-compressed):

* a CloudTrail delivery document ``{"Records": [event, ...]}``;
* JSON lines: one event (or one ``Records`` document) per line;
* several JSON objects concatenated, with or without whitespace between them.

All three are read the same way: top-level JSON values one after the other
(``json.JSONDecoder.raw_decode``). A file that is not valid JSON, or holds an event without
``eventSource``, ``eventName`` or a parseable ``eventTime``, is refused as a whole with
:class:`MalformedFile` naming the line, column and offset and the reason. A file larger than
``max_bytes`` (after decompression) is refused too; a gzipped file is decompressed in chunks
and refused as soon as it passes the limit, never inflated whole first.
"""

from __future__ import annotations

import gzip
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

_WS = re.compile(r"\s*")
_SESSION_ARN = re.compile(r"^arn:aws[\w-]*:sts::\d*:assumed-role/[^/]+/(?P<session>.+)$")
_USER_ARN = re.compile(r"^arn:aws[\w-]*:iam::\d*:user/(?:.*/)?(?P<user>[^/]+)$")
MAX_BYTES = 512 * 1024 * 1024  # default of the setting TOLLGATE_USAGE_MAX_BYTES
_CHUNK = 1 << 20


class MalformedFile(ValueError):
    """The file cannot be read as CloudTrail events. ``str()`` names where and why."""

    def __init__(self, reason: str, *, line: int, column: int, offset: int):
        self.reason, self.line, self.column, self.offset = reason, line, column, offset
        super().__init__(f"line {line}, column {column} (offset {offset}): {reason}")


@dataclass(frozen=True)
class Event:
    event_source: str
    event_name: str
    event_time: datetime
    identities: tuple[str, ...]  # candidate identities, most specific first

    @property
    def action(self) -> str:
        return f"{self.event_source}:{self.event_name}"

    @property
    def principal_label(self) -> str:
        return self.identities[0] if self.identities else "(no userIdentity)"


class TooLarge(MalformedFile):
    """The file (counted decompressed) is larger than the limit."""

    def __init__(self, limit: int):
        self.limit = limit
        self.reason = (
            f"larger than the limit of {limit:,} bytes (TOLLGATE_USAGE_MAX_BYTES, counted "
            "decompressed)"
        )
        self.line, self.column, self.offset = 1, 1, 0
        ValueError.__init__(self, self.reason)


def _gunzip(data: bytes, limit: int) -> bytes:
    """Decompress in chunks, counting: past ``limit`` bytes the file is refused at once."""
    out = bytearray()
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            while chunk := stream.read(min(_CHUNK, limit + 1 - len(out))):
                out += chunk
                if len(out) > limit:
                    raise TooLarge(limit)
    except (OSError, EOFError) as exc:
        raise MalformedFile(f"not a valid gzip file: {exc}", line=1, column=1, offset=0) from None
    return bytes(out)


def decode(data: bytes, *, max_bytes: int = MAX_BYTES) -> str:
    if data[:2] == b"\x1f\x8b":
        data = _gunzip(data, max_bytes)
    if len(data) > max_bytes:
        raise TooLarge(max_bytes)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise MalformedFile(
            f"not UTF-8 text ({exc.reason})", line=line, column=column, offset=exc.start
        ) from None


def _where(text: str, pos: int) -> dict:
    line = text.count("\n", 0, pos) + 1
    return {"line": line, "column": pos - (text.rfind("\n", 0, pos) + 1) + 1, "offset": pos}


def _values(text: str) -> Iterator[tuple[int, object]]:
    decoder = json.JSONDecoder()
    pos = _WS.match(text, 0).end()
    while pos < len(text):
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise MalformedFile(f"invalid JSON: {exc.msg}", **_where(text, exc.pos)) from None
        yield pos, value
        pos = _WS.match(text, end).end()


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def identities(user_identity: object) -> tuple[str, ...]:
    """Candidate names of the caller, most specific first: the ARN, the session name of an
    assumed role (often the person's e-mail), the IAM user name."""
    if not isinstance(user_identity, dict):
        return ()
    out: list[str] = []

    def add(value: object) -> None:
        if isinstance(value, str) and value.strip() and value.strip() not in out:
            out.append(value.strip())

    arn = user_identity.get("arn")
    add(arn)
    if isinstance(arn, str):
        match = _SESSION_ARN.match(arn)
        if match:
            add(match["session"])
        match = _USER_ARN.match(arn)
        if match:
            add(match["user"])
    add(user_identity.get("session_name"))  # flattened by some forwarders
    principal_id = user_identity.get("principalId")
    if isinstance(principal_id, str) and ":" in principal_id:
        add(principal_id.split(":", 1)[1])
    add(user_identity.get("userName"))
    issuer = (user_identity.get("sessionContext") or {}).get("sessionIssuer") or {}
    if isinstance(issuer, dict):
        add(issuer.get("userName"))
    return tuple(out)


def _event(record: object, *, text: str, start: int, index: int | None) -> Event:
    where = _where(text, start)
    label = f"record {index + 1} of the object" if index is not None else "the event"
    if not isinstance(record, dict):
        raise MalformedFile(f"{label} is not a JSON object", **where)
    missing = [k for k in ("eventSource", "eventName") if not isinstance(record.get(k), str)]
    if missing or not all(record.get(k) for k in ("eventSource", "eventName")):
        raise MalformedFile(
            f"{label} has no {' / '.join(missing or ['eventSource', 'eventName'])}", **where
        )
    when = parse_time(record.get("eventTime"))
    if when is None:
        raise MalformedFile(
            f"{label} has no valid eventTime (ISO 8601 with a time zone): "
            f"{record.get('eventTime')!r}",
            **where,
        )
    return Event(
        event_source=record["eventSource"].strip(),
        event_name=record["eventName"].strip(),
        event_time=when,
        identities=identities(record.get("userIdentity")),
    )


def parse(data: bytes, *, max_bytes: int = MAX_BYTES) -> list[Event]:
    """Every event of the file, or :class:`MalformedFile` (nothing partial)."""
    text = decode(data, max_bytes=max_bytes)
    events: list[Event] = []
    for start, value in _values(text):
        if isinstance(value, dict) and "Records" in value:
            records = value["Records"]
            if not isinstance(records, list):
                raise MalformedFile('"Records" is not a list', **_where(text, start))
            events.extend(_event(r, text=text, start=start, index=i) for i, r in enumerate(records))
        else:
            events.append(_event(value, text=text, start=start, index=None))
    return events
