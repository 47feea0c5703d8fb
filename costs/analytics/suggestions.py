"""Optimisation suggestions: independent checks over the resource rollup and grants, one
engine that stores their output deduplicated by fingerprint, and realised savings.

Each check returns :class:`Candidate` objects; :func:`suggestions_run` upserts them by
fingerprint (``sha256(kind | team | resource | key)``): a new fingerprint is stored open, a
known one gets fresh evidence and saving unless it was dismissed or resolved (a dismissed
suggestion stays dismissed across runs). Every estimate says how it was computed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from decimal import Decimal

from django.apps import apps
from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from portal.core.money import ZERO
from portal.core.money import money as _m

from .models import CostResourceDaily, Suggestion
from .selectors import data_as_of

K = Suggestion.Kind
C = Suggestion.Confidence
PREVIOUS_GENERATION = (
    r"(^|[^a-z0-9])(t1|t2|m1|m2|m3|m4|c1|c3|c4|r3|r4|i2|d2|g2|g3|p2|x1)\.[a-z0-9]+"
    r"|standard_[a-z]+[0-9]+s?_v2($|[^0-9])|basic_a[0-9]"
)


def _setting(name: str, default):
    return type(default)(getattr(settings, name, default))


@dataclass
class Candidate:
    kind: str
    team_id: int | None
    resource_id: str
    title: str
    saving: Decimal
    method: str
    confidence: str
    baseline: Decimal = ZERO
    evidence: dict = field(default_factory=dict)
    key: str = ""

    @property
    def fingerprint(self) -> str:
        raw = f"{self.kind}|{self.team_id or '-'}|{self.resource_id}|{self.key}"
        return hashlib.sha256(raw.encode()).hexdigest()


def _window(as_of: dt.date, days: int) -> tuple[dt.date, dt.date]:
    return as_of - dt.timedelta(days=days - 1), as_of


# --- checks --------------------------------------------------------------------------------


def check_idle_and_orphaned(as_of: dt.date) -> list[Candidate]:
    """Idle: usage in the last 14 days below 5% of its level in the 46 days before, while
    it still bills. Orphaned: it billed on most of the last 14 days and no usage at all was
    recorded in 60 days."""
    min_monthly = _setting("COST_SUGGESTION_MIN_MONTHLY", Decimal("20"))
    recent_from, _ = _window(as_of, 14)
    since, _ = _window(as_of, 60)
    recent = Q(day__gte=recent_from)
    rows = (
        CostResourceDaily.objects.filter(
            team__isnull=False, day__gte=since, day__lte=as_of, charge_category="Usage"
        )
        .exclude(resource_id="")
        .exclude(pricing_category="Committed")
        .order_by()
        .values("team_id", "resource_id", "service_name")
        .annotate(
            recent_cost=Coalesce(Sum("billed_cost", filter=recent), ZERO),
            recent_qty=Coalesce(Sum("consumed_quantity", filter=recent), ZERO),
            prior_qty=Coalesce(Sum("consumed_quantity", filter=Q(day__lt=recent_from)), ZERO),
            prior_days=Count("day", filter=Q(day__lt=recent_from), distinct=True),
            recent_days=Count("day", filter=recent, distinct=True),
        )
        .filter(recent_cost__gte=min_monthly * 14 / 30, recent_days__gte=10)
    )
    out = []
    for r in rows:
        monthly = _m(r["recent_cost"] * 30 / 14)
        evidence = {
            "window": f"{recent_from} to {as_of}",
            "cost_last_14_days": str(_m(r["recent_cost"])),
            "usage_last_14_days": str(r["recent_qty"].normalize()),
            "usage_46_days_before": str(r["prior_qty"].normalize()),
            "service": r["service_name"],
        }
        if r["recent_qty"] == 0 and r["prior_qty"] == 0:
            out.append(
                Candidate(
                    K.ORPHANED,
                    r["team_id"],
                    r["resource_id"],
                    f"{r['resource_id']} bills with no usage",
                    monthly,
                    "the last 14 days' cost × 30/14 (deleting the resource stops it)",
                    C.HIGH,
                    monthly,
                    evidence,
                )
            )
        elif r["prior_days"] >= 14 and r["prior_qty"] > 0:
            prior_daily = r["prior_qty"] / r["prior_days"]
            recent_daily = r["recent_qty"] / 14
            if recent_daily <= prior_daily * Decimal("0.05"):
                evidence["usage_share_of_before"] = f"{(recent_daily / prior_daily * 100):.1f}%"
                out.append(
                    Candidate(
                        K.IDLE,
                        r["team_id"],
                        r["resource_id"],
                        f"{r['resource_id']} is idle",
                        monthly,
                        "the last 14 days' cost × 30/14 (stopping or deleting it saves its cost)",
                        C.MEDIUM,
                        monthly,
                        evidence,
                    )
                )
    return out


def check_untagged(as_of: dt.date) -> list[Candidate]:
    """Spend attributed to a team whose lines carry no tags at all, over 30 days."""
    start, _ = _window(as_of, 30)
    min_monthly = _setting("COST_SUGGESTION_MIN_MONTHLY", Decimal("20"))
    base = CostResourceDaily.objects.filter(
        team__isnull=False, tagged=False, day__gte=start, day__lte=as_of
    ).order_by()
    totals = (
        base.values("team_id")
        .annotate(s=Sum("billed_cost"), n=Count("resource_id", distinct=True))
        .filter(s__gte=min_monthly)
    )
    out = []
    for t in totals:
        top = list(
            base.filter(team_id=t["team_id"])
            .values("resource_id")
            .annotate(s=Sum("billed_cost"))
            .order_by("-s")[:10]
        )
        out.append(
            Candidate(
                K.UNTAGGED,
                t["team_id"],
                "",
                f"{t['n']} untagged resources cost {_m(t['s'])} in 30 days",
                ZERO,
                "no direct saving: tags make the spend attributable and the other checks exact",
                C.HIGH,
                _m(t["s"]),
                {
                    "window": f"{start} to {as_of}",
                    "untagged_cost_30_days": str(_m(t["s"])),
                    "resources": [
                        {"resource_id": r["resource_id"], "cost": str(_m(r["s"]))} for r in top
                    ],
                },
            )
        )
    return out


def check_unallocated(as_of: dt.date) -> list[Candidate]:
    """Spend that no attribution rule gives to a team, over 30 days (for finance/admins)."""
    start, _ = _window(as_of, 30)
    base = CostResourceDaily.objects.filter(
        team__isnull=True, allocation="unallocated", day__gte=start, day__lte=as_of
    ).order_by()
    total = base.aggregate(s=Sum("billed_cost"))["s"] or ZERO
    if total < _setting("COST_SUGGESTION_MIN_MONTHLY", Decimal("20")):
        return []
    top = list(base.values("resource_id").annotate(s=Sum("billed_cost")).order_by("-s")[:10])
    return [
        Candidate(
            K.UNALLOCATED,
            None,
            "",
            f"{_m(total)} of spend in 30 days reaches no team",
            ZERO,
            "no direct saving: an attribution rule (or tags) puts it on its owners",
            C.HIGH,
            _m(total),
            {
                "window": f"{start} to {as_of}",
                "unallocated_cost_30_days": str(_m(total)),
                "resources": [
                    {"resource_id": r["resource_id"], "cost": str(_m(r["s"]))} for r in top
                ],
            },
        )
    ]


def check_commitments(as_of: dt.date) -> list[Candidate]:
    """Low utilisation of commitments (used share of their cost below the target) and
    steady on-demand compute that a commitment would cover (coverage below the target)."""
    start, _ = _window(as_of, 30)
    target_util = _setting("COST_COMMITMENT_UTILISATION_TARGET", Decimal("80"))
    target_cov = _setting("COST_COMMITMENT_COVERAGE_TARGET", Decimal("70"))
    discount = _setting("COST_COMMITMENT_DISCOUNT", Decimal("0.28"))
    min_monthly = _setting("COST_SUGGESTION_MIN_MONTHLY", Decimal("20"))
    base = CostResourceDaily.objects.filter(day__gte=start, day__lte=as_of).order_by()
    out = []
    util = base.values("team_id").annotate(
        used=Coalesce(Sum("effective_cost", filter=Q(commitment_discount_status="Used")), ZERO),
        unused=Coalesce(Sum("effective_cost", filter=Q(commitment_discount_status="Unused")), ZERO),
        committed=Coalesce(Sum("effective_cost", filter=Q(pricing_category="Committed")), ZERO),
    )
    committed_by_team = {}
    for r in util:
        committed_by_team[r["team_id"]] = r["committed"]
        total = r["used"] + r["unused"]
        if not total or r["unused"] < min_monthly:
            continue
        pct = r["used"] / total * 100
        if pct < target_util:
            out.append(
                Candidate(
                    K.LOW_COMMITMENT_UTILISATION,
                    r["team_id"],
                    "",
                    f"Commitments {pct:.0f}% used (target {target_util}%)",
                    _m(r["unused"]),
                    "the unused commitment cost of the last 30 days (right-size it at renewal)",
                    C.MEDIUM,
                    _m(total),
                    {
                        "window": f"{start} to {as_of}",
                        "used": str(_m(r["used"])),
                        "unused": str(_m(r["unused"])),
                        "utilisation_pct": f"{pct:.1f}",
                    },
                )
            )
    daily = (
        base.filter(
            pricing_category="Standard", service_category="Compute", charge_category="Usage"
        )
        .values("team_id", "day")
        .annotate(s=Sum("effective_cost"))
    )
    per_team: dict = {}
    for r in daily:
        per_team.setdefault(r["team_id"], {})[r["day"]] = r["s"] or ZERO
    for team_id, days in per_team.items():
        values = [days.get(start + dt.timedelta(days=i), ZERO) for i in range(30)]
        floor = min(values)
        on_demand = sum(values, ZERO)
        committed = committed_by_team.get(team_id, ZERO)
        coverage = committed / (committed + on_demand) * 100 if (committed + on_demand) else 0
        saving = _m(floor * 30 * discount)
        if coverage < target_cov and saving >= min_monthly * discount:
            out.append(
                Candidate(
                    K.COMMITMENT_COVERAGE,
                    team_id,
                    "",
                    f"Commit to {_m(floor)}/day of steady on-demand compute",
                    saving,
                    f"the lowest daily on-demand compute cost of 30 days × 30 × a {discount * 100:.0f}% commitment discount",
                    C.MEDIUM,
                    _m(on_demand),
                    {
                        "window": f"{start} to {as_of}",
                        "on_demand_30_days": str(_m(on_demand)),
                        "steady_daily_floor": str(_m(floor)),
                        "coverage_pct": f"{coverage:.1f}",
                        "discount_assumed": str(discount),
                    },
                )
            )
    return out


def check_previous_generation(as_of: dt.date) -> list[Candidate]:
    """Resources whose type or SKU names a previous-generation instance family."""
    start, _ = _window(as_of, 30)
    min_monthly = _setting("COST_SUGGESTION_MIN_MONTHLY", Decimal("20"))
    gain = _setting("COST_PREVIOUS_GENERATION_GAIN", Decimal("0.10"))
    rows = (
        CostResourceDaily.objects.filter(team__isnull=False, day__gte=start, day__lte=as_of)
        .filter(
            Q(resource_type__iregex=PREVIOUS_GENERATION) | Q(sku_id__iregex=PREVIOUS_GENERATION)
        )
        .order_by()
        .values("team_id", "resource_id", "resource_type", "sku_id")
        .annotate(s=Sum("billed_cost"))
        .filter(s__gte=min_monthly)
    )
    return [
        Candidate(
            K.PREVIOUS_GENERATION,
            r["team_id"],
            r["resource_id"],
            f"{r['resource_id']} runs on previous-generation {r['resource_type'] or r['sku_id']}",
            _m(r["s"] * gain),
            f"30 days' cost × {gain * 100:.0f}% (typical price gain of the current generation)",
            C.LOW,
            _m(r["s"]),
            {
                "window": f"{start} to {as_of}",
                "type": r["resource_type"],
                "sku": r["sku_id"],
                "cost_30_days": str(_m(r["s"])),
            },
        )
        for r in rows
    ]


def check_unused_seats(as_of: dt.date) -> list[Candidate]:
    """Active grants of paid entitlements that are unused by the one unused rule of P4
    (``usage.rules``: window, grace for new grants, fresh usage data for the service).
    Nothing when the optional ``usage`` app is not installed (no last-use data at all)."""
    if not apps.is_installed("usage"):
        return []
    from usage.selectors import unused_grants  # usage is optional: imported only when installed

    grants = (
        unused_grants()
        .filter(entitlement__seat_cost_monthly__gt=0)
        .select_related("principal", "entitlement__service")
        .order_by("pk")
    )
    out = []
    for g in grants:
        cost = g.entitlement.seat_cost_monthly
        out.append(
            Candidate(
                K.UNUSED_SEAT,
                g.principal.team_id,
                f"grant:{g.pk}",
                f"{g.principal.email} has not used {g.entitlement} since {g.last_used_at:%Y-%m-%d}"
                if g.last_used_at
                else f"{g.principal.email} has never been seen using {g.entitlement}",
                _m(cost),
                "the entitlement's per-seat monthly cost (revoking the grant frees the seat)",
                C.HIGH,
                _m(cost),
                {
                    "grant_id": g.pk,
                    "principal": g.principal.email,
                    "entitlement": str(g.entitlement),
                    "last_used_at": g.last_used_at.isoformat() if g.last_used_at else None,
                    "seat_cost_monthly": str(cost),
                    "revoke_url": reverse("access:grant-detail", args=[g.pk]),
                },
                key=str(g.pk),
            )
        )
    return out


def check_unused_commitments(as_of: dt.date) -> list[Candidate]:
    """Finance's view: each commitment (``CommitmentDiscountId``) with unused cost in the
    last 30 days, whatever team its usage lands on (``team`` None: for the org-wide roles)."""
    from .models import CostCommitmentDaily

    start, _ = _window(as_of, 30)
    min_monthly = _setting("COST_SUGGESTION_MIN_MONTHLY", Decimal("20"))
    rows = (
        CostCommitmentDaily.objects.filter(day__gte=start, day__lte=as_of)
        .exclude(commitment_discount_id="")
        .values("commitment_discount_id")
        .annotate(
            used=Coalesce(Sum("effective_cost", filter=Q(commitment_discount_status="Used")), ZERO),
            unused=Coalesce(
                Sum("effective_cost", filter=Q(commitment_discount_status="Unused")), ZERO
            ),
        )
        .order_by("commitment_discount_id")
    )
    out = []
    for r in rows:
        total = r["used"] + r["unused"]
        if r["unused"] < min_monthly or not total:
            continue
        pct = r["used"] / total * 100
        out.append(
            Candidate(
                K.LOW_COMMITMENT_UTILISATION,
                None,
                r["commitment_discount_id"],
                f"Unused commitment: {_m(r['unused'])} of {_m(total)} in 30 days ({pct:.0f}% used)",
                _m(r["unused"]),
                "the commitment's unused cost of the last 30 days (exchange, sell or right-size "
                "it at renewal)",
                C.HIGH,
                _m(total),
                {
                    "window": f"{start} to {as_of}",
                    "commitment": r["commitment_discount_id"],
                    "used": str(_m(r["used"])),
                    "unused": str(_m(r["unused"])),
                    "utilisation_pct": f"{pct:.1f}",
                },
            )
        )
    return out


CHECKS = (
    check_idle_and_orphaned,
    check_untagged,
    check_unallocated,
    check_commitments,
    check_unused_commitments,
    check_previous_generation,
    check_unused_seats,
)


# --- the engine ----------------------------------------------------------------------------


def suggestions_run(*, today: dt.date | None = None, checks=CHECKS) -> dict:
    """Run every check and store the result by fingerprint. Returns counts."""
    as_of = data_as_of(today)
    candidates: dict[str, Candidate] = {}
    for check in checks:
        for c in check(as_of):
            candidates.setdefault(c.fingerprint, c)
    now = timezone.now()
    created = updated = kept = 0
    with transaction.atomic():
        existing = {
            s.fingerprint: s
            for s in Suggestion.objects.select_for_update().filter(fingerprint__in=list(candidates))
        }
        new = []
        for fp, c in candidates.items():
            s = existing.get(fp)
            if s is None:
                new.append(
                    Suggestion(
                        fingerprint=fp,
                        kind=c.kind,
                        team_id=c.team_id,
                        resource_id=c.resource_id,
                        title=c.title[:300],
                        evidence=c.evidence,
                        estimated_monthly_saving=c.saving,
                        savings_method=c.method[:300],
                        confidence=c.confidence,
                        baseline_monthly_cost=c.baseline,
                        first_seen_at=now,
                        last_seen_at=now,
                        updated_at=now,
                    )
                )
            elif s.status in (Suggestion.Status.OPEN, Suggestion.Status.ACCEPTED):
                s.title, s.evidence = c.title[:300], c.evidence
                s.estimated_monthly_saving, s.savings_method = c.saving, c.method[:300]
                s.confidence, s.baseline_monthly_cost, s.last_seen_at = (
                    c.confidence,
                    c.baseline,
                    now,
                )
                s.save(
                    update_fields=[
                        "title",
                        "evidence",
                        "estimated_monthly_saving",
                        "savings_method",
                        "confidence",
                        "baseline_monthly_cost",
                        "last_seen_at",
                    ]
                )
                updated += 1
            else:  # dismissed and resolved suggestions keep their decision
                Suggestion.objects.filter(pk=s.pk).update(last_seen_at=now)
                kept += 1
        Suggestion.objects.bulk_create(new, batch_size=500)
        created = len(new)
    return {"candidates": len(candidates), "created": created, "updated": updated, "kept": kept}


def suggestions_measure_realised(*, today: dt.date | None = None) -> int:
    """Realised monthly saving of resolved suggestions, measured from the cost data: the
    baseline minus the resource's average daily cost since resolution × 30 (for a seat:
    its cost once the grant is no longer active)."""
    from access.models import Grant

    as_of = data_as_of(today)
    n = 0
    for s in Suggestion.objects.filter(
        status=Suggestion.Status.RESOLVED, resolved_at__isnull=False
    ):
        since = s.resolved_at.date() + dt.timedelta(days=1)
        if s.kind == K.UNUSED_SEAT:
            grant_id = s.evidence.get("grant_id")
            held = Grant.objects.filter(pk=grant_id, status=Grant.Status.ACTIVE).exists()
            realised = ZERO if held else s.baseline_monthly_cost
        elif s.resource_id and since <= as_of:
            days = min((as_of - since).days + 1, 30)
            cost = (
                CostResourceDaily.objects.filter(
                    team_id=s.team_id,
                    resource_id=s.resource_id,
                    day__gte=as_of - dt.timedelta(days=days - 1),
                    day__lte=as_of,
                ).aggregate(c=Sum("billed_cost"))["c"]
                or ZERO
            )
            realised = max(ZERO, s.baseline_monthly_cost - cost * 30 / days)
        else:
            continue
        Suggestion.objects.filter(pk=s.pk).update(realised_monthly_saving=_m(realised))
        n += 1
    return n
