"""Parse one FOCUS value. Messy but unambiguous input is accepted; the rest raises ``Bad``.

Accepted, because the spec's intent is clear:
* nulls written as an empty string or the literal ``NULL`` (any case);
* timestamps without ``T`` or ``Z`` (``2024-09-01 00:00:00``), with fractional seconds, or a
  date alone; a value without an offset is UTC (FOCUS timestamps are UTC); an offset is
  converted to UTC;
* enum values in the wrong case (``Usage-based`` is ``Usage-Based``);
* currency codes in lower case; numbers with an exponent (``8e-07``) or surrounding spaces;
* tags as a JSON object; an empty object, an empty string and NULL all mean "no tags".

Refused: numbers that do not parse (or NaN/Infinity, or too large), unparsable or impossible
dates, currency codes that are not three letters, unknown enum values, tags that are not a
JSON object, a missing value in a mandatory column.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from .focus import ENUMS, SERVICE_CATEGORIES

UTC = dt.UTC
MONEY_Q = Decimal("1e-12")
QTY_Q = Decimal("1e-15")
MONEY_LIMIT = Decimal("1e18")
QTY_LIMIT = Decimal("1e23")
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")
_NULLS = {"", "null", "NULL", "Null"}
CACHE_LIMIT = 100_000


class Bad(ValueError):
    """A value that cannot be accepted; the message is the reason shown to the user."""


def is_null(raw) -> bool:
    if raw is None:
        return True
    if isinstance(raw, str):
        s = raw.strip()
        return s in _NULLS or s.lower() == "null"
    return False


def _decimal(raw, quantum: Decimal, limit: Decimal) -> Decimal:
    if raw.__class__ is str:  # the hot path: a CSV cell
        try:
            value = Decimal(raw)
        except InvalidOperation:
            value = None
        if value is not None and value.is_finite() and -limit < value < limit:
            return value.quantize(quantum, rounding=ROUND_HALF_EVEN)
    if isinstance(raw, Decimal):
        value = raw
    elif isinstance(raw, float):
        value = Decimal(repr(raw))
    elif isinstance(raw, int) and not isinstance(raw, bool):
        value = Decimal(raw)
    else:
        try:
            value = Decimal(str(raw).strip())
        except InvalidOperation:
            raise Bad(f"not a number: {str(raw)[:40]!r}") from None
    if not value.is_finite():
        raise Bad(f"not a finite number: {str(raw)[:40]!r}")
    if abs(value) >= limit:
        raise Bad(f"number out of range: {str(raw)[:40]!r}")
    return value.quantize(quantum, rounding=ROUND_HALF_EVEN)


def money(raw) -> Decimal:
    return _decimal(raw, MONEY_Q, MONEY_LIMIT)


def quantity(raw) -> Decimal:
    return _decimal(raw, QTY_Q, QTY_LIMIT)


_ts_cache: dict[str, dt.datetime] = {}


def timestamp(raw) -> dt.datetime:
    """A UTC-aware datetime."""
    if isinstance(raw, dt.datetime):
        return raw.replace(tzinfo=UTC) if raw.tzinfo is None else raw.astimezone(UTC)
    if isinstance(raw, dt.date):
        return dt.datetime(raw.year, raw.month, raw.day, tzinfo=UTC)
    s = str(raw).strip()
    hit = _ts_cache.get(s)
    if hit is not None:
        return hit
    text = s
    if len(text) >= 11 and text[10] in " t":
        text = text[:10] + "T" + text[11:]
    if text.endswith(("z", "Z")):
        text = text[:-1] + "+00:00"
    elif text.endswith(" UTC"):
        text = text[:-4] + "+00:00"
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise Bad(f"not a date/time: {s[:40]!r}") from None
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if len(_ts_cache) > CACHE_LIMIT:
        _ts_cache.clear()
    _ts_cache[s] = value
    return value


def currency(raw) -> str:
    s = str(raw).strip()
    if not _CURRENCY.match(s):
        raise Bad(f"not an ISO 4217 currency code: {s[:40]!r}")
    return s.upper()


_ENUM_LOOKUP = {column: {v.lower(): v for v in values} for column, values in ENUMS.items()}
_CATEGORY_LOOKUP = {v.lower(): v for v in SERVICE_CATEGORIES}


def enum(column: str, raw) -> str:
    s = str(raw).strip()
    hit = _ENUM_LOOKUP[column].get(s.lower())
    if hit is None:
        allowed = ", ".join(ENUMS[column])
        raise Bad(f"unknown value {s[:40]!r}; allowed: {allowed}")
    return hit


def category(raw) -> str:
    s = str(raw).strip()
    return _CATEGORY_LOOKUP.get(s.lower(), s)


_tag_cache: dict[str, dict] = {}


def tags(raw) -> dict:
    if isinstance(raw, dict):
        return {str(k): v for k, v in raw.items()}
    if isinstance(raw, list):  # Parquet map type: list of (key, value)
        return {str(k): v for k, v in raw}
    s = str(raw)
    hit = _tag_cache.get(s)
    if hit is not None:
        return hit
    try:
        value = json.loads(s)
    except ValueError:
        raise Bad("tags are not valid JSON") from None
    if not isinstance(value, dict):
        raise Bad("tags must be a JSON object")
    if len(_tag_cache) > CACHE_LIMIT:
        _tag_cache.clear()
    _tag_cache[s] = value
    return value


def text(raw) -> str:
    return raw if isinstance(raw, str) else str(raw)
