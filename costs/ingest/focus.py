"""The FOCUS column sets (1.0, 1.1, 1.2) this portal reads, and how a header maps to them.

Only the columns the product needs are kept; every other column (``x_*`` extensions, the
sample's non-spec ``Id``) is read and ignored. A column listed in :data:`REQUIRED` must be
present in the header; other known columns are optional and default to empty/NULL.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
