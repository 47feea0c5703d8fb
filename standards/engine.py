"""Evaluate standards over current data with set-based queries (pure reads).

For every rule the engine answers two questions: which subjects it looks at (its
*population*, for the compliance score) and which of them violate it (*findings*). Grants
are the held ones (pending, active, provisioning failed).

The "term" of a grant is the span of its latest approval: from the decision on the request
that last set its end date (the original request or an extension), or from its start when it
came another way, to its end. A grant without an end date has an unbounded term.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from fnmatch import fnmatchcase

from django.db import connection
from django.db.models import (
    Count,
    DateTimeField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
)
from django.db.models.functions import Coalesce
from django.urls import reverse

from access.models import Entitlement, Grant, Service
from accounts.models import Membership

from .document import RISKS, Rule, entitlement_ids

# A grant approved for N days ends N days after the decision plus the time it took to
# provision: an hour of slack keeps exact-limit grants compliant.
TERM_SLACK = timedelta(hours=1)
_PK = 987654321


def _url(name: str, *args) -> str:
    return reverse(name, args=args)


def _url_template(name: str, *args) -> str:
    return reverse(name, args=[*args, _PK]) if args else reverse(name, args=[_PK])


def glob_regex(pattern: str) -> str:
    """A slug glob (validated: letters, digits, -, _, *, ?) as an anchored regex that
    PostgreSQL and SQLite read the same way."""
    return "^" + pattern.replace("*", ".*").replace("?", ".") + "$"


def scope_q(
    scope: dict,
    *,
    service: str = "entitlement__service__",
    entitlement: str | None = "entitlement__",
    principal: str | None = "principal__",
) -> Q:
    cond = Q()
    if "tier" in scope:
        cond &= Q(**{f"{service}tier__in": scope["tier"]})
    if "service" in scope:
        any_of = Q()
        for pattern in scope["service"]:
            any_of |= Q(**{f"{service}slug__regex": glob_regex(pattern)})
        cond &= any_of
    if entitlement is not None and "risk" in scope:
        cond &= Q(**{f"{entitlement}risk__in": scope["risk"]})
    if entitlement is not None and "entitlement" in scope:
        any_of = Q()
        for pattern in scope["entitlement"]:
            any_of |= Q(**{f"{entitlement}slug__regex": glob_regex(pattern)})
        cond &= any_of
    if principal is not None and "worker_type" in scope:
        cond &= Q(**{f"{principal}worker_type__in": scope["worker_type"]})
    return cond


def scope_matches(scope: dict, *, entitlement: Entitlement, principal) -> bool:
    """The same selectors in Python, for one request (request-time checks)."""
    service = entitlement.service
    if "tier" in scope and service.tier not in scope["tier"]:
        return False
    if "service" in scope and not any(fnmatchcase(service.slug, p) for p in scope["service"]):
        return False
    if "risk" in scope and entitlement.risk not in scope["risk"]:
        return False
    if "entitlement" in scope and not any(
        fnmatchcase(entitlement.slug, p) for p in scope["entitlement"]
    ):
        return False
    return "worker_type" not in scope or principal.worker_type in scope["worker_type"]


def risks_above(risk: str) -> list[str]:
    return RISKS[RISKS.index(risk) + 1 :]


def term_exceeds(days: int) -> Q:
    start = Coalesce(F("request__decided_at"), F("starts_at"))
    limit = ExpressionWrapper(
        start + timedelta(days=days) + TERM_SLACK, output_field=DateTimeField()
    )
    return Q(ends_at__isnull=True) | Q(ends_at__gt=limit)


def owner_lead_q(prefix: str = "") -> Q:
    return Q(**{f"{prefix}role": Membership.Role.LEAD, f"{prefix}user__is_active": True})


@dataclass(frozen=True)
class Finding:
    subject_type: str
    subject_id: int
    subject_key: str
    label: str
    service_id: int | None
    detail: str
    fix_url: str


# --- populations (what a rule looks at) -------------------------------------------------
def grant_population_q(rule: Rule) -> Q:
    cond = Q(status__in=Grant.HELD_STATUSES) & scope_q(rule.scope)
    if rule.kind == "end_date_required_above_risk":
        cond &= Q(entitlement__risk__in=risks_above(rule.params["risk"]))
    return cond


def entitlement_population_q(rule: Rule) -> Q:
    return scope_q(rule.scope, service="service__", entitlement="", principal=None)


def service_population_q(rule: Rule) -> Q:
    return scope_q(rule.scope, service="", entitlement=None, principal=None)


def sod_pair_ids(rule: Rule) -> list[tuple[str, str, int, int]]:
    ids = entitlement_ids({ref for pair in rule.params["pairs"] for ref in pair})
    return [(a, b, ids[a], ids[b]) for a, b in rule.params["pairs"] if a in ids and b in ids]


# --- findings (what violates) ----------------------------------------------------------
def violating_grants(rule: Rule) -> QuerySet[Grant]:
    qs = Grant.objects.filter(grant_population_q(rule))
    kind, params = rule.kind, rule.params
    if kind == "max_duration_days":
        return qs.filter(term_exceeds(params["days"]))
    if kind == "no_standing_access":
        if params.get("max_days"):
            return qs.filter(term_exceeds(params["max_days"]))
        return qs.filter(ends_at__isnull=True)
    if kind == "end_date_required_above_risk":
        return qs.filter(ends_at__isnull=True)
    if kind == "requires_stage":
        # Without the stage: no request (break-glass, imported), auto-approved, or a request
        # whose stages did not include it. On SQLite the JSON test happens in Python.
        qs = qs.filter(
            Q(request__isnull=True)
            | ~Q(request__auto_approval_reason="")
            | _lacks_stage_q(params["stage"])
        )
        return qs
    raise ValueError(f"{kind} does not evaluate grants")


def _lacks_stage_q(stage: str) -> Q:
    if connection.vendor == "postgresql":
        return ~Q(request__stages__contains=[{"kind": stage}])
    # Every grant is a candidate (an empty Q() would vanish from the OR); the JSON test
    # happens in Python in grant_findings.
    return Q(pk__isnull=False)


def _grant_detail(rule: Rule, ends_at, decided_at, starts_at) -> str:
    kind, params = rule.kind, rule.params
    if ends_at is None:
        return "no end date"
    days = round((ends_at - (decided_at or starts_at)).total_seconds() / 86400)
    if kind == "max_duration_days":
        return f"granted for {days} days; the limit is {params['days']}"
    if kind == "no_standing_access":
        return f"granted for {days} days; at most {params['max_days']} without renewal"
    if kind == "requires_stage":
        return f"granted without a {params['stage'].replace('_', ' ')} approval stage"
    return ""


def grant_findings(rule: Rule) -> Iterator[Finding]:
    qs = violating_grants(rule)
    fields = [
        "pk",
        "principal__email",
        "entitlement__slug",
        "entitlement__service__slug",
        "entitlement__service_id",
        "ends_at",
        "request__decided_at",
        "starts_at",
    ]
    sqlite_stage = rule.kind == "requires_stage" and connection.vendor != "postgresql"
    if sqlite_stage:
        fields += ["request__stages", "request__auto_approval_reason", "request_id"]
    url = _url_template("access:grant-detail")
    for row in qs.values_list(*fields).order_by().iterator(chunk_size=5000):
        pk, email, ent, svc, svc_id, ends_at, decided, starts = row[:8]
        if sqlite_stage:
            stages, auto, request_id = row[8:]
            if (
                request_id
                and not auto
                and any(s.get("kind") == rule.params["stage"] for s in stages or [])
            ):
                continue
        detail = (
            "granted without a " + rule.params["stage"].replace("_", " ") + " approval stage"
            if rule.kind == "requires_stage"
            else _grant_detail(rule, ends_at, decided, starts)
        )
        yield Finding(
            "grant",
            pk,
            f"grant:{pk}",
            f"{email} → {svc}/{ent}",
            svc_id,
            detail,
            url.replace(str(_PK), str(pk)),
        )


def service_findings(rule: Rule) -> Iterator[Finding]:
    need = rule.params["min"]
    qs = (
        Service.objects.filter(service_population_q(rule))
        .annotate(
            owners=Count(
                "owner_team__memberships",
                filter=owner_lead_q("owner_team__memberships__"),
                distinct=True,
            )
        )
        .filter(owners__lt=need)
        .values_list("pk", "slug", "owner_team__slug", "owners")
        .order_by()
    )
    for pk, slug, team, owners in qs:
        yield Finding(
            "service",
            pk,
            f"service:{pk}",
            slug,
            pk,
            f"{owners} owner(s) (active leads of team {team}); at least {need} required",
            _url("access:service-detail", slug),
        )


def entitlement_findings(rule: Rule) -> Iterator[Finding]:
    has_owner = Exists(
        Membership.objects.filter(team_id=OuterRef("service__owner_team_id")).filter(owner_lead_q())
    )
    qs = (
        Entitlement.objects.filter(entitlement_population_q(rule))
        .annotate(has_owner=has_owner)
        .filter(Q(has_owner=False) | Q(seat_cost_monthly__lte=0))
        .values_list("pk", "slug", "service__slug", "service_id", "has_owner", "seat_cost_monthly")
        .order_by()
    )
    for pk, slug, svc, svc_id, owned, cost in qs:
        missing = []
        if not owned:
            missing.append("no owner (no active lead in the service's owner team)")
        if cost <= 0:
            missing.append("no seat cost")
        yield Finding(
            "entitlement",
            pk,
            f"entitlement:{pk}",
            f"{svc}/{slug}",
            svc_id,
            "; ".join(missing),
            _url("access:entitlement-edit", svc, pk),
        )


def sod_findings(rule: Rule) -> Iterator[Finding]:
    url = _url_template("access:grant-detail")
    principal_scope = scope_q(rule.scope, service="entitlement__service__", entitlement=None)
    for a, b, a_id, b_id in sod_pair_ids(rule):
        holders_a = Grant.objects.filter(
            principal_scope, status__in=Grant.HELD_STATUSES, entitlement_id=a_id
        ).values("principal_id")
        rows = (
            Grant.objects.filter(
                status__in=Grant.HELD_STATUSES, entitlement_id=b_id, principal_id__in=holders_a
            )
            .values_list("pk", "principal_id", "principal__email")
            .order_by()
        )
        service_id = Entitlement.objects.filter(pk=a_id).values_list("service_id", flat=True)[0]
        for grant_pk, uid, email in rows:
            yield Finding(
                "user",
                uid,
                f"user:{uid}:{a}+{b}",
                email,
                service_id,
                f"holds both {a} and {b}",
                url.replace(str(_PK), str(grant_pk)),
            )


def findings(rule: Rule) -> Iterator[Finding]:
    subject = rule.subject
    if subject == "grant":
        return grant_findings(rule)
    if subject == "service":
        return service_findings(rule)
    if subject == "entitlement":
        return entitlement_findings(rule)
    return sod_findings(rule)


# --- populations for the compliance score ------------------------------------------------
def population_by_service(rules: list[Rule]) -> dict[int, int]:
    """Distinct subjects the rules look at, per service (a grant in the scope of two
    standards counts once)."""
    out: dict[int, int] = {}

    def add(rows):
        for service_id, n in rows:
            out[service_id] = out.get(service_id, 0) + n

    by_subject: dict[str, list[Rule]] = {}
    for rule in rules:
        by_subject.setdefault(rule.subject, []).append(rule)
    if by_subject.get("grant"):
        cond = Q(pk__in=[])
        for rule in by_subject["grant"]:
            cond |= grant_population_q(rule)
        add(
            Grant.objects.filter(cond)
            .values("entitlement__service_id")
            .annotate(n=Count("pk"))
            .values_list("entitlement__service_id", "n")
            .order_by()
        )
    if by_subject.get("entitlement"):
        cond = Q(pk__in=[])
        for rule in by_subject["entitlement"]:
            cond |= entitlement_population_q(rule)
        add(
            Entitlement.objects.filter(cond)
            .values("service_id")
            .annotate(n=Count("pk"))
            .values_list("service_id", "n")
            .order_by()
        )
    if by_subject.get("service"):
        cond = Q(pk__in=[])
        for rule in by_subject["service"]:
            cond |= service_population_q(rule)
        add((pk, 1) for pk in Service.objects.filter(cond).values_list("pk", flat=True))
    users: dict[int, set[int]] = {}
    for rule in by_subject.get("user", []):
        principal_scope = scope_q(rule.scope, entitlement=None)
        for _a, _b, a_id, b_id in sod_pair_ids(rule):
            service_id = Entitlement.objects.filter(pk=a_id).values_list("service_id", flat=True)[0]
            users.setdefault(service_id, set()).update(
                Grant.objects.filter(
                    principal_scope,
                    status__in=Grant.HELD_STATUSES,
                    entitlement_id__in=[a_id, b_id],
                )
                .values_list("principal_id", flat=True)
                .distinct()
            )
    add((service_id, len(ids)) for service_id, ids in users.items())
    return out
