"""Approval workflow rules: stage snapshots, eligibility, auto-approval, SoD, prerequisites.

Pure reads (no writes): services call these inside their transactions, after locking.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, NotRequired, TypedDict

from django.contrib.auth.models import Group
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from accounts.models import Membership, PlatformRole, User
from portal.core.memo import memoized

from .models import (
    RISK_ORDER,
    AccessRequest,
    Approval,
    ApprovalAssignment,
    ApprovalPolicy,
    Delegation,
    Entitlement,
    Grant,
    PolicyStage,
    ToxicPair,
)
from .outcomes import Refusal, RefusalCode

DEFAULT_POLICY_SLUG = "default"
K = PolicyStage.ApproverKind


class StageSnapshot(TypedDict):
    """One approval stage as a request keeps it (``AccessRequest.stages``, JSON): the request
    goes through the stages it was submitted with, whatever the policy says later."""

    name: str
    kind: str  # PolicyStage.ApproverKind
    required: int
    group_id: int | None
    user_ids: list[int]
    source: str  # "builtin", "policy:<slug>", "sod" or a check's name
    on_call: NotRequired[bool]  # the person on call for the service passes it (STAGE_PASSES)


def policy_for(entitlement: Entitlement) -> ApprovalPolicy | None:
    if entitlement.policy_id:
        return entitlement.policy
    return memoized(
        ("access.policy", DEFAULT_POLICY_SLUG),
        lambda: ApprovalPolicy.objects.filter(slug=DEFAULT_POLICY_SLUG).first(),
    )


def build_stages(
    entitlement: Entitlement, policy: ApprovalPolicy | None = None
) -> list[StageSnapshot]:
    """Snapshot the policy's stages (a request keeps the stages it was submitted with);
    ``policy`` overrides the entitlement's (a bundle's one approval path)."""
    stages = memoized(
        ("access.stages", entitlement.pk, policy.pk if policy else entitlement.policy_id),
        lambda: _build_stages(entitlement, policy),
    )
    # A copy for the caller, who may add stages (separation of duties, standards).
    return [{**stage, "user_ids": list(stage["user_ids"])} for stage in stages]


def _build_stages(
    entitlement: Entitlement, policy: ApprovalPolicy | None = None
) -> list[StageSnapshot]:
    policy = policy or policy_for(entitlement)
    if policy is None:
        # No policy anywhere: the manager, then the owner team for anything above low risk.
        stages: list[StageSnapshot] = [
            {
                "name": "Manager",
                "kind": K.MANAGER,
                "required": 1,
                "group_id": None,
                "user_ids": [],
                "source": "builtin",
            }
        ]
        if RISK_ORDER[entitlement.risk] > 0:
            stages.append(
                {
                    "name": "Service owner",
                    "kind": K.SERVICE_OWNER,
                    "required": 1,
                    "group_id": None,
                    "user_ids": [],
                    "source": "builtin",
                }
            )
        return stages
    return [
        {
            "name": s.name or s.get_approver_kind_display(),
            "kind": s.approver_kind,
            "required": s.required,
            "group_id": s.group_id,
            "user_ids": sorted(u.pk for u in s.users.all()),
            "source": f"policy:{policy.slug}",
            "on_call": s.auto_approve_on_call,
        }
        for s in policy.stages.order_by("order").prefetch_related("users")
    ]


def security_stage() -> dict[str, Any]:  # a StageSnapshot; checks add to it
    return {
        "name": "Security (separation of duties)",
        "kind": K.SECURITY,
        "required": 1,
        "group_id": None,
        "user_ids": [],
        "source": "sod",
    }


def _active_users(qs):
    return qs.filter(is_active=True)


def stage_candidates(*, request: AccessRequest, stage: StageSnapshot) -> set[int]:
    """Who the stage names, from live data (before exclusions and delegation)."""
    kind = stage["kind"]
    if kind == K.MANAGER:
        # The principal's manager; when that person is inactive, or is the requester (a
        # manager asking on a report's behalf may not approve it), the next manager up.
        excluded = excluded_approvers(request)
        current = request.principal.manager
        seen: set[int] = set()
        while current is not None and current.pk not in seen:
            seen.add(current.pk)
            if current.is_active and current.pk not in excluded:
                return {current.pk}
            current = current.manager
        return set()
    if kind == K.SERVICE_OWNER:
        team_id = request.entitlement.service.owner_team_id
        return set(
            memoized(
                ("access.owners", team_id),
                lambda: frozenset(
                    _active_users(
                        User.objects.filter(Q(team_id=team_id) | Q(memberships__team_id=team_id))
                    ).values_list("pk", flat=True)
                ),
            )
        )
    if kind == K.SECURITY:
        return set(
            memoized(
                ("access.security",),
                lambda: frozenset(
                    _active_users(
                        User.objects.filter(groups__name=PlatformRole.SECURITY)
                    ).values_list("pk", flat=True)
                ),
            )
        )
    if kind == K.GROUP:
        group_id = stage.get("group_id")
        if not group_id:
            return set()
        return set(
            memoized(
                ("access.group", group_id),
                lambda: frozenset(
                    _active_users(User.objects.filter(groups__id=group_id)).values_list(
                        "pk", flat=True
                    )
                ),
            )
        )
    if kind == K.USERS:
        ids = tuple(sorted(stage.get("user_ids") or []))
        return set(
            memoized(
                ("access.users", ids),
                lambda: frozenset(
                    _active_users(User.objects.filter(pk__in=ids)).values_list("pk", flat=True)
                ),
            )
        )
    return set()


def excluded_approvers(request: AccessRequest) -> set[int]:
    """Nobody approves their own request, nor one they made on someone's behalf."""
    return {request.requester_id, request.principal_id}


def other_stage_approvers(request: AccessRequest, *, stage_index: int) -> set[int]:
    """People who approved another stage of the request, themselves or through a delegate
    (whose approval filled their place): one person approves one stage only."""
    if request.pk is None:
        return set()
    rows = (
        Approval.objects.filter(request=request, decision=Approval.Decision.APPROVE)
        .exclude(stage=stage_index)
        .values_list("approver_id", "on_behalf_of_id")
    )
    return {uid for pair in rows for uid in pair if uid is not None}


def active_delegations(*, on: date | None = None):
    on = on or timezone.localdate()
    return Delegation.objects.filter(starts_on__lte=on, ends_on__gte=on, delegate__is_active=True)


def _delegations_today() -> tuple[tuple[int, int], ...]:
    """(delegator, delegate) of every delegation active today: one read per unit of work."""
    on = timezone.localdate()
    return memoized(
        ("access.delegations", on),
        lambda: tuple(
            active_delegations(on=on).order_by("pk").values_list("delegator_id", "delegate_id")
        ),
    )


def eligible_approvers(
    *,
    request: AccessRequest,
    stage_index: int | None = None,
    other_stages: set[int] | None = None,
) -> dict[int, int | None]:
    """user id -> the delegator they act for (None when acting as themselves), from live data.

    ``other_stages`` is :func:`other_stage_approvers` of the stage when the caller has it."""
    index = request.current_stage if stage_index is None else stage_index
    if not (0 <= index < len(request.stages)):
        return {}
    stage = request.stages[index]
    direct = stage_candidates(request=request, stage=stage)
    if request.escalated_at is not None and index == request.current_stage:
        # Escalation added the approvers' managers to the current stage (reset on stage entry).
        direct |= set(
            ApprovalAssignment.objects.filter(
                request=request, stage=index, escalated=True, approver__is_active=True
            ).values_list("approver_id", flat=True)
        )
    if other_stages is None:
        other_stages = other_stage_approvers(request, stage_index=index)
    excluded = excluded_approvers(request) | other_stages
    result: dict[int, int | None] = {uid: None for uid in direct if uid not in excluded}
    for delegator_id, delegate_id in _delegations_today():
        if delegator_id not in direct:
            continue
        if (
            delegate_id not in excluded
            and delegate_id not in result
            and delegator_id not in excluded
        ):
            result[delegate_id] = delegator_id
    return result


def approved_slots(*, request: AccessRequest, stage_index: int) -> set[int]:
    """The people whose approval a stage already has. A delegate's approval fills the
    delegator's slot, so a delegator and their delegate never count twice toward N of M."""
    rows = Approval.objects.filter(
        request=request, stage=stage_index, decision=Approval.Decision.APPROVE
    )
    return {
        on_behalf or approver
        for approver, on_behalf in rows.values_list("approver_id", "on_behalf_of_id")
    }


def stage_requirement_problem(
    *, request: AccessRequest, stage_index: int, eligible: dict[int, int | None] | None = None
) -> str | None:
    stage = request.stages[stage_index]
    if eligible is None:
        eligible = eligible_approvers(request=request, stage_index=stage_index)
    eligible = {uid for uid, via in eligible.items() if via is None}
    if len(eligible) < stage["required"]:
        return f"stage {stage_index + 1} ({stage['name']}) needs {stage['required']} approver(s) but only {len(eligible)} eligible person(s) exist"
    return None


@dataclass
class PeerHolding:
    holders: int
    team_size: int

    @property
    def ratio(self) -> Decimal:
        if not self.team_size:
            return Decimal("0")
        return (Decimal(self.holders) / Decimal(self.team_size)).quantize(Decimal("0.001"))


def peer_holding(*, principal: User, entitlement: Entitlement) -> PeerHolding:
    if not principal.team_id:
        return PeerHolding(0, 0)
    # One query: the active peers, and those of them with an active grant of the entitlement.
    held = Grant.objects.filter(
        principal=OuterRef("pk"), entitlement=entitlement, status=Grant.Status.ACTIVE
    )
    counts = (
        User.objects.filter(team_id=principal.team_id, is_active=True)
        .exclude(pk=principal.pk)
        .aggregate(team_size=Count("pk"), holders=Count("pk", filter=Exists(held)))
    )
    return PeerHolding(counts["holders"], counts["team_size"])


def auto_approval_reason(
    *, principal: User, entitlement: Entitlement, peers: PeerHolding | None = None
) -> str | None:
    policy = policy_for(entitlement)
    if policy is None:
        return None
    allowed = memoized(
        ("access.auto_approve_users", policy.pk),
        lambda: frozenset(policy.auto_approve_users.values_list("pk", flat=True)),
    )
    if principal.pk in allowed:
        return f"auto-approved: {principal.email} is on the allow list of policy {policy.slug}"
    if (
        policy.auto_approve_max_risk
        and policy.auto_approve_peer_ratio is not None
        and RISK_ORDER[entitlement.risk] <= RISK_ORDER[policy.auto_approve_max_risk]
    ):
        peers = peers or peer_holding(principal=principal, entitlement=entitlement)
        if peers.team_size and peers.ratio >= policy.auto_approve_peer_ratio:
            pct = int(peers.ratio * 100)
            need = int(policy.auto_approve_peer_ratio * 100)
            return f"auto-approved: {entitlement.risk} risk and held by {pct}% of the team ({peers.holders} of {peers.team_size}; policy needs {need}%)"
    return None


def toxic_conflicts(
    *, principal: User, entitlement: Entitlement
) -> list[tuple[ToxicPair, Entitlement]]:
    pairs = memoized(
        ("access.toxic_pairs", entitlement.pk),
        lambda: list(
            ToxicPair.objects.filter(Q(first=entitlement) | Q(second=entitlement)).select_related(
                "first__service", "second__service"
            )
        ),
    )
    if not pairs:
        return []
    held = set(
        Grant.objects.filter(principal=principal, status__in=Grant.HELD_STATUSES).values_list(
            "entitlement_id", flat=True
        )
    )
    held |= set(
        AccessRequest.objects.filter(principal=principal, status=AccessRequest.Status.PENDING)
        .exclude(entitlement=entitlement)
        .values_list("entitlement_id", flat=True)
    )
    out = []
    for pair in pairs:
        other = pair.second if pair.first_id == entitlement.pk else pair.first
        if other.pk in held:
            out.append((pair, other))
    return out


def missing_prerequisites(*, principal: User, entitlement: Entitlement) -> list[Entitlement]:
    required = memoized(
        ("access.prerequisites", entitlement.pk),
        lambda: list(entitlement.prerequisites.select_related("service")),
    )
    if not required:
        return []
    held = set(
        Grant.objects.filter(
            principal=principal, status=Grant.Status.ACTIVE, entitlement__in=required
        ).values_list("entitlement_id", flat=True)
    )
    return [e for e in required if e.pk not in held]


@dataclass
class Preview:
    entitlement: Entitlement
    stages: list[StageSnapshot] = field(default_factory=list)
    # Refusal values (a message with its code); a check may append a plain string (its code is
    # then POLICY_CHECK, see access.outcomes.refusal_code).
    refusals: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    auto_approval: str | None = None
    peers: PeerHolding | None = None
    extension_of: Grant | None = None
    # Why auto-approval is off for this request even if a rule would allow it (set by checks).
    no_auto_approval: list[str] = field(default_factory=list)
    # Auto-approval reasons offered by checks (e.g. an adopted recommendation threshold); the
    # first is used when no built-in rule auto-approves and nothing vetoes auto-approval.
    auto_approval_offers: list[str] = field(default_factory=list)
    # Who may approve each stage (eligible_approvers of the request as it would be submitted),
    # when no auto-approval applies: the submission enters its first stage with it.
    eligible: list[dict[int, int | None]] = field(default_factory=list)


# Request-time checks registered by other apps (standards as policy). Each is called with
# (preview=..., requester=..., principal=..., entitlement=..., duration_days=...) after the
# stages are built, and may add refusals, warnings or stages, append to no_auto_approval, or
# offer an auto-approval reason (auto_approval_offers).
REQUEST_CHECKS: list = []


@dataclass(frozen=True)
class StagePass:
    """A stage passed by the system, not by approvers: who (a system actor), why, and what
    the audit records (e.g. the on-call shift that justified it)."""

    actor: Any
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)


# Stage passes registered by other apps (on call): each is called with (request=...,
# stage_index=...) when a request enters a stage, and returns a StagePass or None.
STAGE_PASSES: list = []


def stage_pass(request: AccessRequest, stage_index: int) -> StagePass | None:
    for check in STAGE_PASSES:
        passed = check(request=request, stage_index=stage_index)
        if passed is not None:
            return passed
    return None


def preview(
    *,
    requester: User,
    principal: User,
    entitlement: Entitlement,
    duration_days: int | None = None,
    policy: ApprovalPolicy | None = None,
) -> Preview:
    """What a request would go through, and what would refuse it, before it is submitted.
    ``policy`` (a bundle's strictest path) replaces the entitlement's and rules out
    auto-approval by peers or allow list."""
    from .policies import may_request_for

    result = Preview(
        entitlement=entitlement, peers=peer_holding(principal=principal, entitlement=entitlement)
    )
    if not may_request_for(requester, principal):
        result.refusals.append(
            Refusal(
                RefusalCode.NOT_PERMITTED,
                f"you may not request access for {principal.email}: only for yourself or your reports",
            )
        )
    if not entitlement.requestable:
        result.refusals.append(
            Refusal(RefusalCode.NOT_ELIGIBLE, f"{entitlement} is not requestable")
        )
    if not principal.is_active:
        result.refusals.append(
            Refusal(RefusalCode.NOT_ELIGIBLE, f"{principal.email} is not active")
        )
    if duration_days is not None and (
        duration_days < 1 or duration_days > entitlement.max_duration_days
    ):
        result.refusals.append(
            Refusal(
                RefusalCode.NOT_ELIGIBLE,
                f"duration must be between 1 and {entitlement.max_duration_days} days (the maximum for {entitlement})",
            )
        )
    if AccessRequest.objects.filter(
        principal=principal, entitlement=entitlement, status=AccessRequest.Status.PENDING
    ).exists():
        result.refusals.append(
            Refusal(
                RefusalCode.DUPLICATE_OPEN_REQUEST,
                f"{principal.email} already has an open request for {entitlement}",
            )
        )
    missing = missing_prerequisites(principal=principal, entitlement=entitlement)
    if missing:
        result.refusals.append(
            Refusal(
                RefusalCode.MISSING_PREREQUISITE,
                "missing prerequisite access: " + ", ".join(str(e) for e in missing),
            )
        )
    held = Grant.objects.filter(
        principal=principal, entitlement=entitlement, status__in=Grant.HELD_STATUSES
    ).first()
    if held is not None and held.status != Grant.Status.ACTIVE:
        result.refusals.append(
            Refusal(
                RefusalCode.ALREADY_HELD,
                f"{principal.email} already holds {entitlement} (grant #{held.pk} is {held.get_status_display().lower()})",
            )
        )
    result.extension_of = held if held is not None and held.status == Grant.Status.ACTIVE else None
    stages = build_stages(entitlement, policy)
    if policy is not None:
        result.no_auto_approval.append("a bundle request follows the bundle's approval path")
    conflicts = toxic_conflicts(principal=principal, entitlement=entitlement)
    if conflicts:
        policy = policy or policy_for(entitlement)
        text = "; ".join(f"{entitlement} with {other}: {pair.reason}" for pair, other in conflicts)
        if policy is not None and policy.sod_action == ApprovalPolicy.SodAction.ROUTE_TO_SECURITY:
            stages.append(security_stage())
            result.warnings.append(f"separation of duties — routed to security: {text}")
        else:
            result.refusals.append(
                Refusal(RefusalCode.SEPARATION_OF_DUTIES, f"separation of duties: {text}")
            )
    result.stages = stages
    for check in REQUEST_CHECKS:
        check(
            preview=result,
            requester=requester,
            principal=principal,
            entitlement=entitlement,
            duration_days=duration_days,
        )
    stages = result.stages
    if not conflicts and not result.no_auto_approval:
        result.auto_approval = auto_approval_reason(
            principal=principal, entitlement=entitlement, peers=result.peers
        )
        if result.auto_approval is None and result.auto_approval_offers:
            result.auto_approval = result.auto_approval_offers[0]
    if result.auto_approval is None:
        # A stage with fewer eligible people than it needs would refuse the submission.
        probe = AccessRequest(
            requester=requester, principal=principal, entitlement=entitlement, stages=stages
        )
        for index in range(len(stages)):
            eligible = eligible_approvers(request=probe, stage_index=index, other_stages=set())
            result.eligible.append(eligible)
            problem = stage_requirement_problem(request=probe, stage_index=index, eligible=eligible)
            if problem:
                result.refusals.append(
                    Refusal(
                        RefusalCode.UNAPPROVABLE,
                        f"this request cannot be approved as policy stands: {problem}",
                    )
                )
    return result


def describe_stage_approvers(
    *, request: AccessRequest, stage: StageSnapshot, limit: int = 5
) -> list[str]:
    ids = stage_candidates(request=request, stage=stage) - excluded_approvers(request)
    names = list(
        User.objects.filter(pk__in=ids).order_by("name").values_list("name", "email")[:limit]
    )
    return [n or e for n, e in names]


def group_for_role(role: str) -> Group | None:
    return Group.objects.filter(name=role).first()


def lead_of(team_id: int) -> User | None:
    m = (
        Membership.objects.filter(team_id=team_id, role=Membership.Role.LEAD, user__is_active=True)
        .select_related("user")
        .first()
    )
    return m.user if m else None
