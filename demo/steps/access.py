"""Demo step ``access``: catalog, policies and a year of access history.

Runs after :func:`demo.steps.accounts.seed_people` (teams and the demo accounts exist).
The catalog (services, entitlement templates, prerequisites, toxic pairs) is
``demo/data/access_catalog.yaml``; the words requesters and approvers use are
``demo/data/access_history.yaml``. Every write goes through the access services, so the
audit trail is real and verifies; the history is written "now" in chronological order and
only its timestamps are moved into the past afterwards, by :func:`demo.clock.backdate`
(request ``created_at``/``decided_at``, grant ``created_at``/``starts_at``).
Deterministic for a given ``rng`` seed.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from access import services, workflow
from access.models import (
    AccessRequest,
    Approval,
    ApprovalAssignment,
    ApprovalPolicy,
    Entitlement,
    Grant,
    Risk,
    Service,
)
from accounts.models import PlatformRole, Team, User
from audit.services import audit_batch
from demo.clock import backdate
from demo.tables import load_yaml
from portal.core.actors import GRANT_EXPIRY
from portal.core.errors import DomainError
from portal.core.memo import lookup_scope

DOMAIN = "tollgate.test"
HISTORY_REQUESTS = 2000

L, M, H, C = Risk.LOW, Risk.MEDIUM, Risk.HIGH, Risk.CRITICAL

CATALOG = load_yaml("access_catalog.yaml")
# kind -> entitlement templates: {slug, name, risk, default_days, max_days, seat_cost}
KINDS: dict[str, list[dict]] = CATALOG["kinds"]
# {slug, name, owner_team, tier, kind, [seat_costs: {viewer, editor, admin}], description}
SERVICES: list[dict] = CATALOG["services"]
_WORDS = load_yaml("access_history.yaml")
JUSTIFICATIONS: list[str] = _WORDS["justifications"]
APPROVE_REASONS: list[str] = _WORDS["approve_reasons"]
DENY_REASONS: list[str] = _WORDS["deny_reasons"]


def _key(name: str) -> tuple[str, str]:
    """``service/entitlement`` in the data files -> (service slug, entitlement slug)."""
    service, _, entitlement = name.partition("/")
    return service, entitlement


@dataclass
class Counts:
    approved: int = 0
    auto_approved: int = 0
    denied: int = 0
    cancelled: int = 0
    expired: int = 0
    pending: int = 0
    skipped: int = 0
    revoked: int = 0


def _user(email: str) -> User:
    return User.objects.get(email=email)


def _catalog(
    *, admin: User, security: User, rng: random.Random
) -> tuple[list[Entitlement], dict[str, ApprovalPolicy]]:
    teams = {t.slug: t for t in Team.objects.all()}
    dbas = list(User.objects.filter(team__slug="databases", is_active=True).order_by("email")[:3])
    policies = {
        "default": services.policy_create(
            actor=admin,
            slug=workflow.DEFAULT_POLICY_SLUG,
            name="Manager, then service owner",
            description="The standard path: the requester's manager, then one person of the owner team.",
            stages=[
                {"kind": "manager", "name": "Manager"},
                {"kind": "service_owner", "name": "Service owner"},
            ],
        ),
        "low": services.policy_create(
            actor=admin,
            slug="low-risk-peers",
            name="Low risk: auto-approve when most of the team has it",
            description="Auto-approved when the risk is low and at least half the requester's team holds it; otherwise the manager decides.",
            stages=[{"kind": "manager", "name": "Manager"}],
            auto_approve_max_risk=Risk.LOW,
            auto_approve_peer_ratio=Decimal("0.5"),
        ),
        "critical": services.policy_create(
            actor=admin,
            slug="critical-access",
            name="Critical: manager, owner and security",
            description="Tier-0 administration and anything critical.",
            stages=[
                {"kind": "manager", "name": "Manager"},
                {"kind": "service_owner", "name": "Service owner"},
                {"kind": "security", "name": "Security"},
            ],
            sod_action=ApprovalPolicy.SodAction.ROUTE_TO_SECURITY,
            chat_approval=ApprovalPolicy.ChatApproval.OFF,  # web with MFA only, not from Slack
            remind_after=timedelta(hours=8),
            escalate_after=timedelta(hours=24),
            expire_after=timedelta(days=5),
        ),
        "dba": services.policy_create(
            actor=admin,
            slug="dba-quorum",
            name="Two of three DBAs",
            description="Write and superuser access to shared databases needs two of the named DBAs.",
            stages=[
                {"kind": "manager", "name": "Manager"},
                {"kind": "users", "name": "DBA quorum", "required": 2, "users": dbas},
            ],
        ),
        "payments": services.policy_create(
            actor=admin,
            slug="payments-sensitive",
            name="Payments: manager and owner; toxic pairs go to security",
            description="Money movement. A maker-checker conflict adds a security stage instead of refusing.",
            stages=[
                {"kind": "manager", "name": "Manager"},
                {"kind": "service_owner", "name": "Payments owner"},
            ],
            sod_action=ApprovalPolicy.SodAction.ROUTE_TO_SECURITY,
        ),
    }
    entitlements: list[Entitlement] = []
    by_key: dict[tuple[str, str], Entitlement] = {}
    for svc in SERVICES:
        slug, name, team, tier, kind = (
            svc["slug"],
            svc["name"],
            svc["owner_team"],
            svc["tier"],
            svc["kind"],
        )
        service = services.service_create(
            actor=admin,
            slug=slug,
            name=name,
            owner_team=teams[team],
            tier=tier,
            description=svc["description"],
            docs_url=f"https://docs.{DOMAIN}/services/{slug}",
        )
        seats = {
            "viewer": "0",
            "editor": "0",
            "admin": "0",
            **{seat: cost or "0" for seat, cost in svc.get("seat_costs", {}).items()},
        }
        for template in KINDS[kind]:
            ent_slug, ent_name = template["slug"], template["name"]
            risk = Risk(template["risk"])
            cost = str(template["seat_cost"]).format(**seats)
            if risk == C or (tier == 0 and risk == H):
                policy = policies["critical"]
            elif slug == "payments-ledger":
                policy = policies["payments"]
            elif kind == "db" and risk == H and team == "databases":
                policy = policies["dba"]
            elif risk == L:
                policy = policies["low"]
            else:
                policy = None  # the default policy
            ent = services.entitlement_create(
                actor=admin,
                service=service,
                slug=ent_slug,
                name=ent_name,
                description=f"{ent_name} on {name}.",
                risk=risk,
                default_duration_days=template["default_days"],
                max_duration_days=template["max_days"],
                seat_cost_monthly=Decimal(cost),
                policy=policy,
                allows_break_glass=risk in (H, C) and tier == 0,
            )
            entitlements.append(ent)
            by_key[(slug, ent_slug)] = ent
    # Prerequisites (production shell access needs the VPN), set once every entitlement exists:
    # the catalog order is the draw order, so a prerequisite may come later in it. The access
    # services have no call that adds prerequisites to an existing entitlement yet.
    needs: dict[tuple[str, str], list[Entitlement]] = {}
    for row in CATALOG["prerequisites"]:
        needs.setdefault(_key(row["entitlement"]), []).append(by_key[_key(row["needs"])])
    for key, prerequisites in needs.items():
        by_key[key].prerequisites.set(prerequisites)
    for pair in CATALOG["toxic_pairs"]:
        services.toxic_pair_create(
            actor=security,
            first=by_key[_key(pair["first"])],
            second=by_key[_key(pair["second"])],
            reason=pair["reason"],
        )
    return entitlements, policies


_users: dict[int, User] = {}


def _by_pk(pk: int) -> User:
    if pk not in _users:
        _users[pk] = User.objects.get(pk=pk)
    return _users[pk]


def _assigned(req: AccessRequest) -> list[int]:
    """Who the current stage waits on (the inbox rows), minus those who already approved."""
    done = Approval.objects.filter(request=req, stage=req.current_stage).values("approver_id")
    ids = (
        ApprovalAssignment.objects.filter(request=req, stage=req.current_stage)
        .exclude(approver_id__in=done)
        .values_list("approver_id", flat=True)
    )
    return sorted(set(ids))


def _approve_current_stage(req: AccessRequest, rng: random.Random) -> AccessRequest:
    """Approve the current stage with as many assigned people as it needs."""
    stage = req.current_stage
    while req.status == AccessRequest.Status.PENDING and req.current_stage == stage:
        candidates = _assigned(req)
        if not candidates:
            raise DomainError("no approver left")
        req = services.access_request_approve(
            actor=_by_pk(rng.choice(candidates)),
            request_id=req.pk,
            reason=rng.choice(APPROVE_REASONS),
        )
    return req


def _history(
    *, entitlements: list[Entitlement], rng: random.Random, now: datetime, counts: Counts
) -> None:
    people = list(
        User.objects.filter(is_active=True, manager__isnull=False)
        .select_related("manager", "team")
        .order_by("email")
    )
    engineer = next(p for p in people if p.email == f"engineer@{DOMAIN}")
    by_team: dict[int, list[Entitlement]] = {}
    for ent in entitlements:
        by_team.setdefault(ent.service.owner_team_id, []).append(ent)
    low = [e for e in entitlements if e.risk == Risk.LOW and not e.prerequisites.exists()]
    # Each team's usual tools: most of the team ends up holding them, so later requests
    # for them are auto-approved by the peer rule.
    bundles = {team_id: rng.sample(low, 4) for team_id in sorted({p.team_id for p in people})}
    # Request dates over the last year, more of them recent; processed oldest first.
    ages = sorted((365 * rng.random() ** 1.4 + 3 for _ in range(HISTORY_REQUESTS)), reverse=True)
    request_dates: list[tuple[int, datetime, datetime]] = []
    grant_dates: dict[int, datetime] = {}
    bundle_held: set[tuple[int, int]] = set()
    for age_days in ages:
        principal = engineer if rng.random() < 0.01 else rng.choice(people)
        roll = rng.random()
        missing = [e for e in bundles[principal.team_id] if (principal.pk, e.pk) not in bundle_held]
        if roll < 0.55 and missing:
            ent = rng.choice(missing)
        elif roll < 0.75 and principal.team_id in by_team:
            ent = rng.choice(by_team[principal.team_id])  # the team's own services
        else:
            ent = rng.choice(entitlements)
        on_behalf = rng.random() < 0.05
        actor = principal.manager if on_behalf else principal
        if ent in bundles[principal.team_id]:
            days = ent.max_duration_days  # the team's everyday tools, for the year
        else:
            days = rng.choice(
                [
                    d
                    for d in (ent.default_duration_days, 7, 14, 30, 90, 180)
                    if d <= ent.max_duration_days
                ]
            )
        created = now - timedelta(
            days=age_days, hours=rng.randint(0, 23), minutes=rng.randint(0, 59)
        )
        try:
            # One savepoint and one bulk write of its audit events per request.
            with transaction.atomic(), audit_batch():
                req = services.access_request_submit(
                    actor=actor,
                    principal=principal,
                    entitlement=ent,
                    justification=rng.choice(JUSTIFICATIONS),
                    duration_days=days,
                )
                if req.status == AccessRequest.Status.APPROVED:
                    counts.auto_approved += 1
                    decided = created + timedelta(seconds=2)
                else:
                    decided = created + timedelta(hours=rng.uniform(0.2, 60))
                    # Approvers decide on what they can see: the team's own services and
                    # everyday tools are rarely refused, another team's high-risk access often
                    # (so the recommendation model of P5 has real signal to learn).
                    familiar = (
                        ent.service.owner_team_id == principal.team_id
                        or ent in bundles[principal.team_id]
                    )
                    deny = 3 if familiar else (40 if ent.risk in (H, C) else 18)
                    outcome = rng.choices(
                        ["approve", "deny", "cancel", "expire"], weights=[72, deny, 9, 6]
                    )[0]
                    if outcome == "approve":
                        while req.status == AccessRequest.Status.PENDING:
                            req = _approve_current_stage(req, rng)
                        counts.approved += 1
                    elif outcome == "deny":
                        at = rng.randrange(len(req.stages))
                        while req.current_stage < at and req.status == AccessRequest.Status.PENDING:
                            req = _approve_current_stage(req, rng)
                        services.access_request_deny(
                            actor=_by_pk(rng.choice(_assigned(req))),
                            request_id=req.pk,
                            reason=rng.choice(DENY_REASONS),
                        )
                        counts.denied += 1
                    elif outcome == "cancel":
                        services.access_request_cancel(
                            actor=actor, request_id=req.pk, reason="no longer needed"
                        )
                        counts.cancelled += 1
                    else:
                        policy = workflow.policy_for(ent) or ApprovalPolicy()
                        decided = created + policy.expire_after
                        services.access_request_expire(request_id=req.pk, now=now)
                        counts.expired += 1
        except DomainError:
            counts.skipped += 1
            continue
        request_dates.append((req.pk, created, decided))
        grant = Grant.objects.filter(request_id=req.pk).first()
        if grant is not None and grant.status == Grant.Status.ACTIVE:
            if ent in bundles[principal.team_id]:
                bundle_held.add((principal.pk, ent.pk))
            if grant.version == 1:
                grant_dates[grant.pk] = decided
            if decided + timedelta(days=req.duration_days) < now:
                with transaction.atomic(), audit_batch():
                    services.grant_revoke(
                        grant_id=grant.pk,
                        actor=GRANT_EXPIRY,
                        origin=services.RevokeOrigin.EXPIRY,
                        reason="the access period ended",
                    )
                counts.revoked += 1
    _backdate(request_dates, grant_dates)


def _backdate(
    request_dates: list[tuple[int, datetime, datetime]], grant_dates: dict[int, datetime]
) -> None:
    backdate(
        AccessRequest,
        {
            pk: {"created_at": created, "decided_at": decided}
            for pk, created, decided in request_dates
        },
    )
    backdate(Grant, {pk: {"created_at": at, "starts_at": at} for pk, at in grant_dates.items()})


def _pending(
    *, entitlements: list[Entitlement], rng: random.Random, counts: Counts
) -> AccessRequest:
    """Open requests waiting in the demo inboxes (manager@, owner@, security@, DBAs)."""
    engineer, manager, owner = (
        _user(f"engineer@{DOMAIN}"),
        _user(f"manager@{DOMAIN}"),
        _user(f"owner@{DOMAIN}"),
    )
    by_key = {(e.service.slug, e.slug): e for e in entitlements}
    wanted = by_key[("elasticsearch-prod", "read-write")]
    # The demo engineer's request that the demo manager can approve (manager, then owner@'s team).
    demo = services.access_request_submit(
        actor=engineer,
        principal=engineer,
        entitlement=wanted,
        justification="reindexing the product catalogue for the autumn sale",
        duration_days=14,
    )
    assert (
        demo.status == AccessRequest.Status.PENDING
        and manager.pk in workflow.eligible_approvers(request=demo)
    )
    counts.pending += 1
    people = list(
        User.objects.filter(is_active=True, manager__isnull=False)
        .exclude(pk=engineer.pk)
        .order_by("email")
    )
    search_ents = [
        e for e in entitlements if e.service.owner_team_id == owner.team_id and e.risk != Risk.LOW
    ]
    others = [e for e in entitlements if e.risk != Risk.LOW]
    made = 0
    submitted: dict[int, dict[str, datetime]] = {}
    while made < 80:
        principal = rng.choice(people)
        ent = rng.choice(search_ents if made % 3 == 0 else others)
        days = min(ent.default_duration_days, 14)
        try:
            with transaction.atomic(), audit_batch():
                req = services.access_request_submit(
                    actor=principal,
                    principal=principal,
                    entitlement=ent,
                    justification=rng.choice(JUSTIFICATIONS),
                    duration_days=days,
                )
                if req.status != AccessRequest.Status.PENDING:
                    continue
                # Some have passed their first stage and wait on the owners or security.
                if len(req.stages) > 1 and rng.random() < 0.6:
                    req = _approve_current_stage(req, rng)
        except DomainError:
            continue
        made += 1
        counts.pending += 1
        age = timedelta(hours=rng.uniform(0.5, 20))
        submitted[req.pk] = {"created_at": timezone.now() - age}
    backdate(AccessRequest, submitted)
    return demo


def seed_access(*, stdout, rng: random.Random) -> None:
    if Service.objects.exists():
        stdout.write("access: catalog already present; skipped")
        return
    _users.clear()  # a cache of this run's approvers (a recreated database reuses ids)
    now = timezone.now()
    counts = Counts()
    # The back-fill writes every audit event to the database (and verifies); it does not
    # also stream tens of thousands of them to the console log.
    audit_log = logging.getLogger("portal.audit")
    level = audit_log.level
    audit_log.setLevel(logging.WARNING)
    try:
        _seed(stdout=stdout, rng=rng, now=now, counts=counts)
    finally:
        audit_log.setLevel(level)


def _seed(*, stdout, rng: random.Random, now: datetime, counts: Counts) -> None:
    admin = User.objects.filter(
        groups__name=PlatformRole.PLATFORM_ADMIN, email=f"admin@{DOMAIN}"
    ).first() or _user(f"admin@{DOMAIN}")
    security = _user(f"security@{DOMAIN}")
    # The catalog, teams and policies do not change while the history is written: their
    # reads are made once (portal.core.memo); what each request changes is read live.
    with services.notifications_muted(), transaction.atomic(), lookup_scope():
        entitlements, policies = _catalog(admin=admin, security=security, rng=rng)
        _history(entitlements=entitlements, rng=rng, now=now, counts=counts)
        demo = _pending(entitlements=entitlements, rng=rng, counts=counts)
        owner = _user(f"owner@{DOMAIN}")
        teammate = (
            User.objects.filter(team_id=owner.team_id, is_active=True)
            .exclude(pk=owner.pk)
            .order_by("email")
            .first()
        )
        if teammate is not None:
            start = timezone.localdate() + timedelta(days=14)
            services.delegation_create(
                actor=owner,
                delegate=teammate,
                starts_on=start,
                ends_on=start + timedelta(days=6),
                reason="conference week",
            )
    active = Grant.objects.filter(status=Grant.Status.ACTIVE).count()
    stdout.write(
        f"access: {Service.objects.count()} services, {len(entitlements)} entitlements, {len(policies)} policies; "
        f"{AccessRequest.objects.count()} requests (approved {counts.approved}, auto-approved {counts.auto_approved}, denied {counts.denied}, "
        f"cancelled {counts.cancelled}, expired {counts.expired}, pending {counts.pending}; {counts.skipped} refused by policy), "
        f"{active} active grants; engineer@{DOMAIN}'s request #{demo.pk} waits on manager@{DOMAIN}"
    )
