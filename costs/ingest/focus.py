"""The FOCUS column sets (1.0, 1.1, 1.2) this portal reads, and how a header maps to them.

Only the columns the product needs are kept; every other column (``x_*`` extensions, the
sample's non-spec ``Id``) is read and ignored. A column listed in :data:`REQUIRED` must be
present in the header; other known columns are optional and default to empty/NULL.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from decimal import Decimal

VERSIONS = ("1.0", "1.1", "1.2")

# FOCUS column -> (CostLine field, kind). Kinds are handled in costs.ingest.values.
COLUMNS: dict[str, tuple[str, str]] = {
    "BilledCost": ("billed_cost", "money!"),
    "EffectiveCost": ("effective_cost", "money!"),
    "ListCost": ("list_cost", "money"),
    "ContractedCost": ("contracted_cost", "money"),
    "ListUnitPrice": ("list_unit_price", "money"),
    "ContractedUnitPrice": ("contracted_unit_price", "money"),
    "PricingQuantity": ("pricing_quantity", "quantity"),
    "ConsumedQuantity": ("consumed_quantity", "quantity"),
    "BillingCurrency": ("billing_currency", "currency!"),
    "BillingPeriodStart": ("billing_period_start", "date!"),
    "BillingPeriodEnd": ("billing_period_end", "date!"),
    "ChargePeriodStart": ("charge_period_start", "datetime!"),
    "ChargePeriodEnd": ("charge_period_end", "datetime!"),
    "BillingAccountId": ("billing_account_id", "text"),
    "BillingAccountName": ("billing_account_name", "text"),
    "SubAccountId": ("sub_account_id", "text"),
    "SubAccountName": ("sub_account_name", "text"),
    "ChargeCategory": ("charge_category", "enum!"),
    "ChargeClass": ("charge_class", "enum"),
    "ChargeFrequency": ("charge_frequency", "enum"),
    "ChargeDescription": ("charge_description", "text"),
    "ProviderName": ("provider_name", "text"),
    "PublisherName": ("publisher_name", "text"),
    "InvoiceIssuerName": ("invoice_issuer_name", "text"),
    "ServiceName": ("service_name", "text"),
    "ServiceCategory": ("service_category", "category"),
    "RegionId": ("region_id", "text"),
    "RegionName": ("region_name", "text"),
    "AvailabilityZone": ("availability_zone", "text"),
    "ResourceId": ("resource_id", "text"),
    "ResourceName": ("resource_name", "text"),
    "ResourceType": ("resource_type", "text"),
    "SkuId": ("sku_id", "text"),
    "SkuPriceId": ("sku_price_id", "text"),
    "PricingCategory": ("pricing_category", "enum"),
    "PricingUnit": ("pricing_unit", "text"),
    "ConsumedUnit": ("consumed_unit", "text"),
    "CommitmentDiscountId": ("commitment_discount_id", "text"),
    "CommitmentDiscountName": ("commitment_discount_name", "text"),
    "CommitmentDiscountCategory": ("commitment_discount_category", "enum"),
    "CommitmentDiscountType": ("commitment_discount_type", "text"),
    "CommitmentDiscountStatus": ("commitment_discount_status", "enum"),
    "Tags": ("tags", "tags"),
}

# Mandatory in every version and needed by the product.
REQUIRED = (
    "BilledCost",
    "EffectiveCost",
    "BillingAccountId",
    "BillingCurrency",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargeCategory",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "ProviderName",
    "ServiceName",
)

# Columns that first appear in a version: their presence identifies it.
INTRODUCED = {
    "1.1": {
        "CapacityReservationId",
        "CapacityReservationStatus",
        "CommitmentDiscountQuantity",
        "CommitmentDiscountUnit",
        "ServiceSubcategory",
        "SkuMeter",
        "SkuPriceDetails",
    },
    "1.2": {
        "BillingAccountType",
        "SubAccountType",
        "InvoiceId",
        "PricingCurrency",
        "PricingCurrencyContractedUnitPrice",
        "PricingCurrencyEffectiveCost",
        "PricingCurrencyListUnitPrice",
    },
}
# A per-row version column some exporters write; each value must be a known version.
VERSION_COLUMNS = ("FocusVersion", "x_FocusVersion")

# Allowed values, matched case-insensitively and stored in the spec's spelling.
ENUMS: dict[str, tuple[str, ...]] = {
    "ChargeCategory": ("Usage", "Purchase", "Tax", "Credit", "Adjustment"),
    "ChargeClass": ("Correction",),
    "ChargeFrequency": ("One-Time", "Recurring", "Usage-Based"),
    "PricingCategory": ("Standard", "Dynamic", "Committed", "Other"),
    "CommitmentDiscountCategory": ("Spend", "Usage"),
    "CommitmentDiscountStatus": ("Used", "Unused"),
}
# ServiceCategory: known values are stored in the spec's spelling; others are kept as
# given (the list changed between versions, so an unknown one is not an error).
SERVICE_CATEGORIES = (
    "AI and Machine Learning",
    "Analytics",
    "Business Applications",
    "Compute",
    "Databases",
    "Developer Tools",
    "Multicloud",
    "Identity",
    "Integration",
    "Internet of Things",
    "Management and Governance",
    "Media",
    "Migration",
    "Mobile",
    "Networking",
    "Security",
    "Storage",
    "Web",
    "Other",
)


@dataclass
class HeaderProblem:
    column: str
    reason: str


@dataclass
class Schema:
    version: str
    # (index in the file row, FOCUS column, field, kind) for each known column present
    columns: list[tuple[int, str, str, str]] = field(default_factory=list)
    version_column: int | None = None
    missing_optional: list[str] = field(default_factory=list)


def detect_version(header: list[str]) -> str:
    names = set(header)
    if names & INTRODUCED["1.2"]:
        return "1.2"
    if names & INTRODUCED["1.1"]:
        return "1.1"
    return "1.0"


def resolve_header(
    header: list[str], *, version: str | None = None
) -> tuple[Schema | None, list[HeaderProblem]]:
    """Map a header to a :class:`Schema`, or say what is wrong with it."""
    header = [h.strip().lstrip("\ufeff") for h in header]
    problems: list[HeaderProblem] = []
    if version is not None and version not in VERSIONS:
        problems.append(
            HeaderProblem(
                "FocusVersion",
                f"unknown FOCUS version {version!r}; supported: {', '.join(VERSIONS)}",
            )
        )
        return None, problems
    seen: dict[str, int] = {}
    for i, name in enumerate(header):
        if name in seen:
            problems.append(HeaderProblem(name, "column appears twice in the header"))
        seen.setdefault(name, i)
    for name in REQUIRED:
        if name not in seen:
            problems.append(HeaderProblem(name, "missing mandatory FOCUS column"))
    if problems:
        return None, problems
    schema = Schema(version=version or detect_version(header))
    for name, (fname, kind) in COLUMNS.items():
        if name in seen:
            schema.columns.append((seen[name], name, fname, kind))
        else:
            schema.missing_optional.append(name)
    for name in VERSION_COLUMNS:
        if name in seen:
            schema.version_column = seen[name]
            break
    return schema, []


def focus_row(
    day: dt.date,
    *,
    cost,
    effective=None,
    tags: dict | None = None,
    account: str = "112233445566",
    category: str = "Usage",
    region: str = "us-east-1",
    pricing: str = "Standard",
    **columns,
) -> dict[str, object]:
    """One daily FOCUS 1.0 usage row, every :data:`COLUMNS` key present (blank when unset).

    For the files Tollgate's own tools write and then load through the importer (the demo's
    cost months, the tests' hand-built costs). ``cost`` is the billed cost (``effective``
    defaults to it), ``tags`` a dict or ``None`` (``NULL``); ``columns`` are further FOCUS
    columns by name and win over the defaults.
    """
    period = day.replace(day=1)
    following = (period + dt.timedelta(days=32)).replace(day=1)
    billed = Decimal(str(cost))
    row: dict[str, object] = {c: "" for c in COLUMNS}
    row.update(
        {
            "BilledCost": billed,
            "EffectiveCost": billed if effective is None else effective,
            "ListCost": (billed * Decimal("1.1")).quantize(Decimal("1e-6")),
            "BillingCurrency": "USD",
            "BillingPeriodStart": f"{period} 00:00:00",
            "BillingPeriodEnd": f"{following} 00:00:00",
            "ChargePeriodStart": f"{day} 00:00:00",
            "ChargePeriodEnd": f"{day + dt.timedelta(days=1)} 00:00:00",
            "BillingAccountId": "1234567890123",
            "BillingAccountName": "Example billing account",
            "SubAccountId": account,
            "SubAccountName": "Example account",
            "ChargeCategory": category,
            "ChargeFrequency": "Usage-Based",
            "ProviderName": "AWS",
            "PublisherName": "AWS",
            "InvoiceIssuerName": "AWS",
            "RegionId": region,
            "RegionName": "US East (N. Virginia)",
            "PricingCategory": pricing,
            "Tags": json.dumps(tags) if tags else "NULL",
        }
    )
    row.update(columns)
    return row
