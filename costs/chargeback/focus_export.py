"""A month's allocated costs as a FOCUS 1.2 file (CSV or Parquet), streamed.

One row per (cost line, receiving team): a direct line once, a shared line once per team of
its rule, an unallocated line once (org exports only). The FOCUS cost columns hold the
row's **allocated** amounts (exact, 12 decimal places), so any FOCUS tool that sums
``BilledCost`` gets the team's chargeback, and re-importing the file gives the same totals.
The ``x_`` columns say how each amount was reached:

=========================== =========================================================
``x_Team``                  receiving team slug (blank: unallocated)
``x_AllocationMethod``      direct, shared or unallocated
``x_AllocationRule``        the attribution rule's name
``x_AllocationShare``       the team's fraction of the line (1 for direct lines)
``x_AllocatedBilledCost``   the allocated billed cost to the cent (largest remainder per
                            team: a team's rows add up to its summary)
``x_AllocatedEffectiveCost`` the same for the effective cost
``x_LineBilledCost``        the whole line's billed cost, before the split
``x_LineEffectiveCost``     the whole line's effective cost, before the split
``x_LineId``                Tollgate's cost-line id
``x_AttributedService``     catalog service the rules gave the line
``x_Project``               project the rules gave the line
=========================== =========================================================

Quantities (``PricingQuantity``, ``ConsumedQuantity``) are the line's, not split.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator
from decimal import ROUND_DOWN, Decimal
from typing import IO, Any

from django.db import connection

from accounts.models import Team
from portal.core.csvsafe import neutralise

from ..models import AttributionRule
from .allocation import EXACT, AllocatedPage, Scope, allocated_rows

FORMATS = ("csv", "parquet")
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}

# (FOCUS column, how the value is made, kind for Parquet)
_ALLOCATED = {
    "BilledCost": "allocated_billed_exact",
    "EffectiveCost": "allocated_effective_exact",
    "ListCost": "allocated_list_exact",
}
_LINE = {
    "BillingPeriodStart": ("billing_period_start", "date"),
    "BillingPeriodEnd": ("billing_period_end", "date"),
    "ChargePeriodStart": ("charge_period_start", "datetime"),
    "ChargePeriodEnd": ("charge_period_end", "datetime"),
    "BillingAccountId": ("billing_account_id", "text"),
    "BillingAccountName": ("billing_account_name", "text"),
    "BillingAccountType": (None, "text"),
    "SubAccountId": ("sub_account_id", "text"),
    "SubAccountName": ("sub_account_name", "text"),
    "SubAccountType": (None, "text"),
    "ChargeCategory": ("charge_category", "text"),
    "ChargeClass": ("charge_class", "text"),
    "ChargeFrequency": ("charge_frequency", "text"),
    "ChargeDescription": ("charge_description", "text"),
    "ProviderName": ("provider_name", "text"),
    "PublisherName": ("publisher_name", "text"),
    "InvoiceIssuerName": ("invoice_issuer_name", "text"),
    "ServiceName": ("service_name", "text"),
    "ServiceCategory": ("service_category", "text"),
    "RegionId": ("region_id", "text"),
    "RegionName": ("region_name", "text"),
    "AvailabilityZone": ("availability_zone", "text"),
    "ResourceId": ("resource_id", "text"),
    "ResourceName": ("resource_name", "text"),
    "ResourceType": ("resource_type", "text"),
    "SkuId": ("sku_id", "text"),
    "SkuPriceId": ("sku_price_id", "text"),
    "PricingCategory": ("pricing_category", "text"),
    "PricingQuantity": ("pricing_quantity", "quantity"),
    "PricingUnit": ("pricing_unit", "text"),
    "ConsumedQuantity": ("consumed_quantity", "quantity"),
    "ConsumedUnit": ("consumed_unit", "text"),
    "ListUnitPrice": ("list_unit_price", "money"),
    "ContractedUnitPrice": ("contracted_unit_price", "money"),
    "BillingCurrency": ("billing_currency", "text"),
    "CommitmentDiscountId": ("commitment_discount_id", "text"),
    "CommitmentDiscountName": ("commitment_discount_name", "text"),
    "CommitmentDiscountCategory": ("commitment_discount_category", "text"),
    "CommitmentDiscountType": ("commitment_discount_type", "text"),
    "CommitmentDiscountStatus": ("commitment_discount_status", "text"),
    "Tags": ("tags", "text"),
}
COLUMNS: tuple[str, ...] = (
    "BilledCost",
    "EffectiveCost",
    "ListCost",
    "ContractedCost",
    *_LINE,
    "x_Team",
    "x_AllocationMethod",
    "x_AllocationRule",
    "x_AllocationShare",
    "x_AllocatedBilledCost",
    "x_AllocatedEffectiveCost",
    "x_LineBilledCost",
    "x_LineEffectiveCost",
    "x_LineId",
    "x_AttributedService",
    "x_Project",
)
KINDS: dict[str, str] = {
    "BilledCost": "money",
    "EffectiveCost": "money",
    "ListCost": "money",
    "ContractedCost": "money",
    **{c: kind for c, (_, kind) in _LINE.items()},
    "x_AllocationShare": "share",
    "x_AllocatedBilledCost": "cents",
    "x_AllocatedEffectiveCost": "cents",
    "x_LineBilledCost": "money",
    "x_LineEffectiveCost": "money",
    "x_LineId": "int",
}


def _ts(value) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC)
    return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)


def _tags(value) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _row_maker() -> Callable[[dict], list[Any]]:
    teams = dict(Team.objects.values_list("id", "slug"))
    rules = dict(AttributionRule.objects.values_list("id", "name"))
    line_fields = [(field, kind) for field, kind in _LINE.values()]

    def make(r: dict) -> list[Any]:
        share = Decimal(r["share"])
        contracted = r["contracted_cost"]
        if contracted is not None:
            contracted = (Decimal(contracted) * share).quantize(EXACT, rounding=ROUND_DOWN)
        team_id = r["alloc_team_id"]
        method = r["allocation"] if team_id is not None else "unallocated"
        out: list[Any] = [
            r["allocated_billed_exact"],
            r["allocated_effective_exact"],
            r["allocated_list_exact"] if r["list_cost"] is not None else None,
            contracted,
        ]
        for field, kind in line_fields:
            if field is None:
                out.append("")
            elif kind in ("date", "datetime"):
                out.append(_ts(r[field]))
            elif field == "tags":
                out.append(_tags(r[field]))
            else:
                out.append(r[field])
        out += [
            teams.get(team_id, "") if team_id is not None else "",
            method,
            rules.get(r["rule_id"], "") if r["rule_id"] is not None else "",
            share,
            r["allocated_billed"],
            r["allocated_effective"],
            r["billed_cost"],
            r["effective_cost"],
            r["id"],
            r["attributed_service"],
            r["project"],
        ]
        return out

    return make


def export_rows(scope: Scope) -> Iterator[list[Any]]:
    """The export's rows in :data:`COLUMNS` order (Python values), streamed."""
    make = _row_maker()
    for r in allocated_rows(scope):
        yield make(r)


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value else "0"
    return str(value)


def write_csv(rows: Iterable[list[Any]], out: IO[str]) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    n = 0
    for row in rows:
        writer.writerow([neutralise(v) if isinstance(v, str) else _cell(v) for v in row])
        n += 1
    return n


def csv_chunks(rows: Iterable[list[Any]], *, rows_per_chunk: int = 2000) -> Iterator[str]:
    """The CSV as text chunks (for a streaming HTTP response)."""
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    pending = 0
    for row in rows:
        writer.writerow([neutralise(v) if isinstance(v, str) else _cell(v) for v in row])
        pending += 1
        if pending >= rows_per_chunk:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
            pending = 0
    yield buf.getvalue()


def _arrow_schema():
    import pyarrow as pa

    types = {
        "money": pa.decimal128(38, 12),
        "cents": pa.decimal128(38, 2),
        "quantity": pa.decimal128(38, 15),
        "share": pa.decimal128(38, 18),
        "date": pa.timestamp("s", tz="UTC"),
        "datetime": pa.timestamp("s", tz="UTC"),
        "int": pa.int64(),
        "text": pa.string(),
    }
    return pa.schema([(c, types[KINDS.get(c, "text")]) for c in COLUMNS])


_SHARE_Q = Decimal("1e-18")


def write_parquet(rows: Iterable[list[Any]], path: str, *, batch_rows: int = 50_000) -> int:
    """Row groups of ``batch_rows``: memory holds one batch, whatever the month's size."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _arrow_schema()
    share_index = COLUMNS.index("x_AllocationShare")
    n = 0
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        batch: list[list[Any]] = []

        def flush() -> None:
            columns = list(zip(*batch, strict=True))
            arrays = [
                pa.array(list(col), type=field.type)
                for col, field in zip(columns, schema, strict=True)
            ]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))

        for row in rows:
            row[share_index] = Decimal(row[share_index]).quantize(_SHARE_Q)
            batch.append(row)
            if len(batch) >= batch_rows:
                flush()
                n += len(batch)
                batch = []
        if batch:
            flush()
            n += len(batch)
        elif n == 0:
            writer.write_table(pa.Table.from_pylist([], schema=schema))
    return n


def export_to_file(scope: Scope, path: str, fmt: str) -> int:
    """Write ``scope``'s allocated rows to ``path``; the number of rows. On PostgreSQL the
    database formats the rows (:mod:`.copy_export`); elsewhere Python does."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    if connection.vendor == "postgresql":
        from . import copy_export

        if fmt == "parquet":
            return copy_export.copy_parquet(scope, path)
        with open(path, "wb") as fh:
            copy_export.copy_csv(scope, fh)
        return AllocatedPage(scope).count()
    if fmt == "parquet":
        return write_parquet(export_rows(scope), path)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        return write_csv(export_rows(scope), fh)


def csv_download(scope: Scope) -> Iterator[bytes | str]:
    """The CSV for a streaming HTTP response."""
    if connection.vendor == "postgresql":
        from . import copy_export

        return copy_export.csv_stream(scope)
    return csv_chunks(export_rows(scope))
