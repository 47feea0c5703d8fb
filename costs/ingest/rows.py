"""The row path of ingestion: the cost-line columns, row errors and :class:`RowParser`, which
turns one raw FOCUS row into a cost-line tuple (validated and attributed) or errors.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection

from costs.attribution import LineAttrs, attr_key

from . import values as V
from .focus import VERSIONS

MAX_ERRORS = 100

TEXT_FIELDS = (
    "billing_account_id",
    "billing_account_name",
    "sub_account_id",
    "sub_account_name",
    "charge_category",
    "charge_class",
    "charge_frequency",
    "charge_description",
    "provider_name",
    "publisher_name",
    "invoice_issuer_name",
    "service_name",
    "service_category",
    "region_id",
    "region_name",
    "availability_zone",
    "resource_id",
    "resource_name",
    "resource_type",
    "sku_id",
    "sku_price_id",
    "pricing_category",
    "pricing_unit",
    "consumed_unit",
    "billing_currency",
    "commitment_discount_id",
    "commitment_discount_name",
    "commitment_discount_category",
    "commitment_discount_type",
    "commitment_discount_status",
)
NUMBER_FIELDS = (
    "billed_cost",
    "effective_cost",
    "list_cost",
    "contracted_cost",
    "list_unit_price",
    "contracted_unit_price",
    "pricing_quantity",
    "consumed_quantity",
)
LINE_COLUMNS = (
    ("source_id", "import_run_id", "billing_period_start", "billing_period_end")
    + ("charge_period_start", "charge_period_end")
    + TEXT_FIELDS
    + NUMBER_FIELDS
    + ("tags", "attr_key", "allocation", "team_id", "attributed_service", "project", "rule_id")
)
_DEFAULTS = dict.fromkeys(TEXT_FIELDS, "") | dict.fromkeys(NUMBER_FIELDS)


@dataclass
class RowError:
    row: int
    column: str
    reason: str

    def as_dict(self) -> dict:
        return {"row": self.row, "column": self.column, "reason": self.reason}


class _Errors:
    def __init__(self):
        self.first: list[RowError] = []
        self.count = 0

    def add(self, row: int, column: str, reason: str) -> None:
        self.count += 1
        if len(self.first) < MAX_ERRORS:
            self.first.append(RowError(row, column, reason))


def _converter(kind: str, column: str):
    base = kind.rstrip("!")
    if base == "money":
        return V.money
    if base == "quantity":
        return V.quantity
    if base in ("date", "datetime"):
        return V.timestamp
    if base == "currency":
        return V.currency
    if base == "enum":
        return lambda raw: V.enum(column, raw)
    if base == "category":
        return V.category
    if base == "tags":
        return V.tags
    return V.text


_NULL_TOKENS = frozenset({"", "NULL", "null", "Null"})
TEXT, MONEY, QTY, TS, OTHER, TAGS = range(6)
_KIND_CODES = {
    "text": TEXT,
    "money": MONEY,
    "quantity": QTY,
    "date": TS,
    "datetime": TS,
    "tags": TAGS,
}


def _is_null(cell) -> bool:
    if cell is None:
        return True
    if isinstance(cell, str):
        if cell in _NULL_TOKENS:
            return True
        if cell[:1].isspace() or cell[-1:].isspace():
            return cell.strip().lower() in ("", "null")
    return False


class RowParser:
    """Turns raw rows into cost-line tuples (in :data:`LINE_COLUMNS` order) or errors.

    The hot loop of ingestion: conversions are specialised per kind, and attribution,
    the attribute key and the tags' JSON are cached per distinct raw attribute set.
    """

    CACHE_LIMIT = 20_000

    def __init__(self, schema, *, source_id, run_id, attributor, requested_period, errors):
        self.plan = [
            (
                idx,
                column,
                fname,
                kind.endswith("!"),
                _KIND_CODES.get(kind.rstrip("!"), OTHER),
                _converter(kind, column),
            )
            for idx, column, fname, kind in schema.columns
        ]
        index = {fname: idx for idx, _, fname, _ in schema.columns}
        self.attr_idx = [
            index.get(f)
            for f in (
                "billing_account_id",
                "sub_account_id",
                "resource_id",
                "service_name",
                "region_id",
                "tags",
            )
        ]
        self.width = None
        self.version_column = schema.version_column
        self.source_id = source_id
        self.run_id = run_id
        self.attributor = attributor
        self.requested_period = requested_period
        self.errors = errors
        self.sqlite = connection.vendor == "sqlite"
        self.billed_total = Decimal(0)
        self.periods: set[dt.date] = set()
        self._attr_cache: dict = {}
        self._ts_text: dict = {}

    def attribution_for(self, acct, sub, rid, svc, region, tags_cell, tags=None):
        """(attr key, outcome, tags JSON) for one attribute set, cached per raw tags cell.

        ``tags``: the parsed tags, or ``None`` to parse ``tags_cell`` here (the columnar
        path; a null cell means no tags). Returns ``None`` if the tags do not parse.
        """
        cache_key = (acct, sub, rid, svc, region, tags_cell)
        hit = self._attr_cache.get(cache_key)
        if hit is None:
            if tags is None:
                if tags_cell is None or _is_null(tags_cell):
                    tags = {}
                else:
                    try:
                        tags = V.tags(tags_cell)
                    except V.Bad:
                        return None
            attrs = LineAttrs(acct, sub, rid, svc, region, tags)
            hit = (
                attr_key(attrs),
                self.attributor.attribute(attrs),
                json.dumps(tags, separators=(",", ":"), default=str),
            )
            if len(self._attr_cache) >= self.CACHE_LIMIT:
                self._attr_cache.clear()
            self._attr_cache[cache_key] = hit
        return hit

    def _attribution(self, values: dict, tags: dict, raw: list):
        i = self.attr_idx[5]
        return self.attribution_for(
            values["billing_account_id"],
            values["sub_account_id"],
            values["resource_id"],
            values["service_name"],
            values["region_id"],
            raw[i] if i is not None else None,
            tags,
        )

    def _ts_db(self, value: dt.datetime):
        if not self.sqlite:
            return value
        hit = self._ts_text.get(value)
        if hit is None:
            hit = value.replace(tzinfo=None).isoformat(" ")
            if len(self._ts_text) > 100_000:
                self._ts_text.clear()
            self._ts_text[value] = hit
        return hit

    def parse(self, raw: list, row_no: int) -> tuple | None:
        if self.width is not None and len(raw) != self.width:
            self.errors.add(
                row_no, "(row)", f"row has {len(raw)} fields; the header has {self.width}"
            )
            return None
        values: dict[str, Any] = dict(_DEFAULTS)
        tags: dict = {}
        ok = True
        for idx, column, fname, required, code, convert in self.plan:
            cell = raw[idx]
            if _is_null(cell):
                if required:
                    self.errors.add(row_no, column, "missing value in a mandatory column")
                    ok = False
                continue
            if code == TEXT and cell.__class__ is str:
                values[fname] = cell
                continue
            try:
                value = convert(cell)
            except V.Bad as exc:
                self.errors.add(row_no, column, str(exc))
                ok = False
                continue
            if code == TAGS:
                tags = value
            else:
                values[fname] = value
        if self.version_column is not None:
            version = str(raw[self.version_column]).strip()
            if version and version not in VERSIONS:
                self.errors.add(row_no, "FocusVersion", f"unknown FOCUS version {version!r}")
                ok = False
        if not ok:
            return None
        period = values["billing_period_start"].date()
        if self.requested_period is not None and period.replace(day=1) != self.requested_period:
            self.errors.add(
                row_no,
                "BillingPeriodStart",
                f"billing period {period:%Y-%m} is not the requested {self.requested_period:%Y-%m}",
            )
            return None
        cps, cpe = values["charge_period_start"], values["charge_period_end"]
        if cpe < cps:
            self.errors.add(row_no, "ChargePeriodEnd", "ends before ChargePeriodStart")
            return None
        key, outcome, tags_json = self._attribution(values, tags, raw)
        self.billed_total += values["billed_cost"]
        self.periods.add(period)
        return (
            self.source_id,
            self.run_id,
            period,
            values["billing_period_end"].date(),
            self._ts_db(cps),
            self._ts_db(cpe),
            *[values[f] for f in TEXT_FIELDS],
            *[values[f] for f in NUMBER_FIELDS],
            tags_json,
            key,
            outcome.allocation,
            outcome.team_id,
            outcome.service,
            outcome.project,
            outcome.rule_id,
        )
