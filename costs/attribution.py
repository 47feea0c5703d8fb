"""The attribution engine: ordered rules, first match wins; shared-cost splits to the cent.

Pure Python and free of the ORM (rules arrive as :class:`RuleSpec`), so ingestion,
re-attribution, the rule preview and the property tests all use the same code.

Condition semantics (every condition that is set must match; a rule with none is a
catch-all):
* ``tag_key``: the line's tag keys are compared case-insensitively and without surrounding
  spaces. A missing tag and an empty one are the same. ``tag_value`` is a glob compared
  case-insensitively; a blank ``tag_value`` matches only a missing or empty tag.
* ``billing_account_id`` / ``sub_account_id``: exact; several may be given, comma-separated.
* ``resource_pattern``: a glob over the whole resource id (case-sensitive), or a regular
  expression searched anywhere in it.
* ``service_name`` (provider ServiceName) and ``region`` (RegionId): case-insensitive.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal

DIRECT, SHARED, UNALLOCATED = "direct", "shared", "unallocated"


@dataclass(frozen=True)
class LineAttrs:
    billing_account_id: str = ""
    sub_account_id: str = ""
    resource_id: str = ""
    service_name: str = ""
    region_id: str = ""
    tags: dict = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Outcome:
    allocation: str
    team_id: int | None = None
    service: str = ""
    project: str = ""
    rule_id: int | None = None


UNALLOCATED_OUTCOME = Outcome(UNALLOCATED)


@dataclass
class RuleSpec:
    id: int | None
    name: str = ""
    tag_key: str = ""
    tag_value: str = ""
    billing_account_id: str = ""
    sub_account_id: str = ""
    resource_pattern: str = ""
    resource_pattern_kind: str = "glob"
    service_name: str = ""
    region: str = ""
    method: str = "direct"
    team_id: int | None = None
    target_service: str = ""
    target_project: str = ""
    proportional_category: str = ""
    shares: list[tuple[int, Decimal]] = field(default_factory=list)

    @classmethod
    def from_model(cls, rule, shares: Iterable | None = None) -> RuleSpec:
        share_rows = rule.shares.all() if shares is None else shares
        return cls(
            id=rule.pk,
            name=rule.name,
            tag_key=rule.tag_key,
            tag_value=rule.tag_value,
            billing_account_id=rule.billing_account_id,
            sub_account_id=rule.sub_account_id,
            resource_pattern=rule.resource_pattern,
            resource_pattern_kind=rule.resource_pattern_kind,
            service_name=rule.service_name,
            region=rule.region,
            method=rule.method,
            team_id=rule.team_id,
            target_service=rule.target_service,
            target_project=rule.target_project,
            proportional_category=rule.proportional_category,
            shares=[(s.team_id, Decimal(s.weight)) for s in share_rows],
        )


def normalise_tags(tags: dict) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in tags.items():
        k = str(key).strip().casefold()
        v = "" if value is None else str(value).strip()
        if k not in out or not out[k]:  # a non-empty value wins over an empty duplicate
            out[k] = v
    return out


def _split_ids(value: str) -> frozenset[str]:
    return frozenset(part.strip() for part in value.split(",") if part.strip())


class CompiledRule:
    __slots__ = (
        "spec",
        "tag_key",
        "tag_value",
        "accounts",
        "sub_accounts",
        "resource_re",
        "service",
        "region",
        "outcome",
    )

    def __init__(self, spec: RuleSpec):
        self.spec = spec
        self.tag_key = spec.tag_key.strip().casefold() or None
        self.tag_value = (
            re.compile(fnmatch.translate(spec.tag_value.strip().casefold()))
            if spec.tag_value.strip()
            else None
        )
        self.accounts = _split_ids(spec.billing_account_id) or None
        self.sub_accounts = _split_ids(spec.sub_account_id) or None
        if spec.resource_pattern:
            self.resource_re = (
                re.compile(spec.resource_pattern)
                if spec.resource_pattern_kind == "regex"
                else re.compile(fnmatch.translate(spec.resource_pattern))
            )
        else:
            self.resource_re = None
        self.service = spec.service_name.strip().casefold() or None
        self.region = spec.region.strip().casefold() or None
        if spec.method == DIRECT:
            self.outcome = Outcome(
                DIRECT, spec.team_id, spec.target_service, spec.target_project, spec.id
            )
        else:
            self.outcome = Outcome(SHARED, None, spec.target_service, spec.target_project, spec.id)

    def matches(self, attrs: LineAttrs, ntags: dict[str, str]) -> bool:
        if self.accounts is not None and attrs.billing_account_id not in self.accounts:
            return False
        if self.sub_accounts is not None and attrs.sub_account_id not in self.sub_accounts:
            return False
        if self.service is not None and attrs.service_name.casefold() != self.service:
            return False
        if self.region is not None and attrs.region_id.casefold() != self.region:
            return False
        if self.resource_re is not None:
            rid = attrs.resource_id
            if self.spec.resource_pattern_kind == "regex":
                if not self.resource_re.search(rid):
                    return False
            elif not self.resource_re.match(rid):
                return False
        if self.tag_key is not None:
            value = ntags.get(self.tag_key, "")
            if self.tag_value is None:
                if value:
                    return False
            elif not value or not self.tag_value.match(value.casefold()):
                return False
        return True


def attr_key(attrs: LineAttrs) -> int:
    """A stable 64-bit key for the attributes rules read (used to re-attribute set-wise)."""
    blob = json.dumps(
        [
            attrs.billing_account_id,
            attrs.sub_account_id,
            attrs.resource_id,
            attrs.service_name,
            attrs.region_id,
            attrs.tags,
        ],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return int.from_bytes(
        hashlib.blake2b(blob.encode(), digest_size=8).digest(), "big", signed=True
    )


class Attributor:
    """Evaluates an ordered rule list. Results are cached per distinct attribute set."""

    CACHE_LIMIT = 200_000

    def __init__(self, rules: Sequence[RuleSpec]):
        self.rules = [CompiledRule(r) for r in rules]
        self._cache: dict = {}

    def attribute(self, attrs: LineAttrs) -> Outcome:
        ntags = normalise_tags(attrs.tags) if attrs.tags else {}
        for rule in self.rules:
            if rule.matches(attrs, ntags):
                return rule.outcome
        return UNALLOCATED_OUTCOME

    def attribute_cached(self, key, attrs: LineAttrs) -> Outcome:
        hit = self._cache.get(key)
        if hit is None:
            hit = self.attribute(attrs)
            if len(self._cache) >= self.CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = hit
        return hit


# --- shared-cost splits ------------------------------------------------------------------


def split_quantum(amount: Decimal) -> Decimal:
    """Split at the amount's own precision, never coarser than a cent."""
    exponent = amount.normalize().as_tuple().exponent
    if not isinstance(exponent, int):
        exponent = 0
    return Decimal(1).scaleb(min(-2, exponent))


def split_amount(amount: Decimal, weights: Sequence[tuple[object, Decimal]]) -> dict:
    """Split ``amount`` by ``weights``; the parts sum exactly to ``amount``.

    Each part is rounded toward zero at :func:`split_quantum`; what is left over goes to
    the largest share (the first of equal largest shares). Weights must be positive.
    """
    if not weights:
        raise ValueError("a split needs at least one share")
    total = sum((w for _, w in weights), Decimal(0))
    if total <= 0:
        raise ValueError("split weights must be positive")
    q = split_quantum(amount)
    largest = max(range(len(weights)), key=lambda i: (weights[i][1], -i))
    parts: dict = {}
    allotted = Decimal(0)
    for i, (key, w) in enumerate(weights):
        if i == largest:
            continue
        part = (amount * w / total).quantize(q, rounding=ROUND_DOWN)
        parts[key] = parts.get(key, Decimal(0)) + part
        allotted += part
    key = weights[largest][0]
    parts[key] = parts.get(key, Decimal(0)) + (amount - allotted)
    return parts


def share_weights(
    spec: RuleSpec, *, category_spend: dict[int, Decimal] | None = None
) -> list[tuple[int, Decimal]]:
    """The (team id, weight) list a shared rule splits by.

    ``even``: each listed team once. ``fixed``: the listed weights. ``proportional``: each
    listed team's (or, with none listed, every team's) spend in ``proportional_category``
    for the period; teams with no positive spend get nothing; if nobody has any, even.
    """
    listed = [(t, Decimal(w)) for t, w in spec.shares]
    if spec.method == "even":
        return [(t, Decimal(1)) for t, _ in listed]
    if spec.method == "fixed":
        return [(t, w) for t, w in listed if w > 0]
    if spec.method == "proportional":
        spend = category_spend or {}
        teams = [t for t, _ in listed] if listed else sorted(spend)
        weighted = [(t, spend.get(t, Decimal(0))) for t in teams]
        weighted = [(t, w) for t, w in weighted if w > 0]
        if weighted:
            return weighted
        return [(t, Decimal(1)) for t in teams]
    raise ValueError(f"not a shared method: {spec.method}")
