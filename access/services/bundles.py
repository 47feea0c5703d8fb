"""Requestable bundles (access packages) and their assignment rules.

* A bundle is requested as one item: one member request per entitlement the principal does not
  already hold (what they hold is shown and skipped), all with the same stages — those of the
  strictest of the bundle's own policy and its members' — and decided together
  (``bundle_request_approve`` / ``_deny``).
* Assignment rules grant a bundle to everyone who matches (team, department = a team's
  subtree, worker type, manager subtree) and remove what a rule granted from whoever stops
  matching. ``bundle_assignment_preview`` computes the same diff ``bundle_assignments_apply``
  acts on, so who would gain and lose is known before a rule is saved.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Team, User
from accounts.policies import is_platform_admin
from accounts.selectors import team_subtree_ids
from audit.services import audit_record
from portal.core.actors import ASSIGNMENT_RULES, Actor, actor_may, actor_user
from portal.core.errors import Conflict, NotPermitted, ValidationError
from portal.core.managed import refuse_if_managed

from .. import registry as actions
from .. import workflow
from ..models import (
    AccessBundle,
    AccessRequest,
    ApprovalPolicy,
    AssignmentRule,
    BundleAssignment,
    BundleRequest,
    Entitlement,
    Grant,
)
from .catalog import CATALOG_SYSTEMS
from .grants import RevokeOrigin, grant_revoke
from .grants_direct import grant_birthright
from .requests import access_request_approve, access_request_deny, access_request_submit

BUNDLE_FIELDS = ("name", "description", "owner_team", "policy", "requestable")


# --- the approval path --------------------------------------------------------------------
def _strictness(policy: ApprovalPolicy) -> tuple[int, int, int]:
    stages = list(policy.stages.all())
    security = sum(1 for s in stages if s.approver_kind in ("security", "group", "users"))
    return (len(stages), sum(s.required for s in stages), security)


def bundle_policy(bundle: AccessBundle) -> ApprovalPolicy | None:
    """The strictest of the bundle's policy and its members' (most stages, then most
    approvals, then most named-approver stages); ties go to the bundle's own."""
    candidates: list[ApprovalPolicy] = []
    if bundle.policy is not None:
        candidates.append(bundle.policy)
    for ent in bundle.entitlements.select_related("policy"):
        policy = workflow.policy_for(ent)
        if policy is not None and all(policy.pk != c.pk for c in candidates):
            candidates.append(policy)
    if not candidates:
        return None
    return max(candidates, key=_strictness)


@dataclass
class Holding:
    entitlement: Entitlement
    state: str  # "held", "pending" (a request is open), "missing"
    grant: Grant | None = None


def bundle_holdings(*, bundle: AccessBundle, principal: User) -> list[Holding]:
    """What of the bundle the principal already holds, has asked for, or lacks."""
    members = list(bundle.entitlements.select_related("service").order_by("service__slug", "slug"))
    held = {
        g.entitlement_id: g
        for g in Grant.objects.filter(
            principal=principal, entitlement__in=members, status__in=Grant.HELD_STATUSES
        )
    }
    pending = set(
        AccessRequest.objects.filter(
            principal=principal, entitlement__in=members, status=AccessRequest.Status.PENDING
        ).values_list("entitlement_id", flat=True)
    )
    out = []
    for ent in members:
        if ent.pk in held:
            out.append(Holding(ent, "held", held[ent.pk]))
        elif ent.pk in pending:
            out.append(Holding(ent, "pending"))
        else:
            out.append(Holding(ent, "missing"))
    return out


def _prerequisite_order(entitlements: list[Entitlement]) -> list[Entitlement]:
    """Members in an order where a member's prerequisites in the bundle come first."""
    ids = {e.pk for e in entitlements}
    needs = {
        e.pk: set(e.prerequisites.filter(pk__in=ids).values_list("pk", flat=True))
        for e in entitlements
    }
    done: list[Entitlement] = []
    left = list(entitlements)
    while left:
        ready = [e for e in left if needs[e.pk] <= {d.pk for d in done}] or left[:1]
        done.extend(ready)
        left = [e for e in left if e not in ready]
    return done


# --- requesting a bundle ------------------------------------------------------------------
def bundle_request_submit(
    *,
    actor: Actor,
    bundle: AccessBundle,
    principal: User,
    justification: str,
    duration_days: int | None = None,
) -> BundleRequest:
    """Request a bundle as one item: one member request per entitlement not yet held or
    asked for, all on the bundle's approval path. All or none."""
    person = actor_user(actor)
    if not isinstance(person, User):
        raise NotPermitted("a person requests a bundle")
    if not bundle.requestable:
        raise NotPermitted(f"the bundle {bundle.slug} is not requestable")
    if not (justification or "").strip():
        raise ValidationError("say why the access is needed", field="justification")
    holdings = bundle_holdings(bundle=bundle, principal=principal)
    missing = [h.entitlement for h in holdings if h.state == "missing"]
    if not missing:
        raise Conflict(f"{principal.email} already holds or has asked for all of {bundle.name}")
    policy = bundle_policy(bundle)
    with transaction.atomic():
        request = BundleRequest.objects.create(
            bundle=bundle,
            requester=person,
            principal=principal,
            justification=justification.strip(),
            policy_slug=policy.slug if policy else "",
            already_held=[str(h.entitlement) for h in holdings if h.state != "missing"],
        )
        members = [
            access_request_submit(
                actor=actor,
                principal=principal,
                entitlement=ent,
                justification=f"{justification.strip()} (bundle {bundle.slug})",
                duration_days=min(
                    duration_days or ent.default_duration_days, ent.max_duration_days
                ),
                policy=policy,
                bundle_request=request,
            )
            for ent in _prerequisite_order(missing)
        ]
        audit_record(
            actor=actor,
            action=actions.BUNDLE_REQUESTED,
            target=request,
            after={
                "bundle": bundle.slug,
                "principal": principal.email,
                "policy": request.policy_slug,
                "requests": [m.pk for m in members],
                "already_held": request.already_held,
            },
            reason=request.justification,
        )
    return request


def bundle_request_status(request: BundleRequest) -> str:
    statuses = set(request.member_requests.values_list("status", flat=True))
    if AccessRequest.Status.PENDING in statuses:
        return "pending"
    if statuses == {AccessRequest.Status.APPROVED}:
        return "approved"
    if AccessRequest.Status.DENIED in statuses:
        return "denied"
    return "closed"


def bundle_request_approve(*, actor: Actor, bundle_request_id: int, reason: str = "") -> int:
    """Approve, at its current stage, every pending member request the actor may approve.
    Returns how many; refused when there is none (not an approver of this bundle request)."""
    with transaction.atomic():
        pending = list(
            AccessRequest.objects.filter(
                bundle_request_id=bundle_request_id, status=AccessRequest.Status.PENDING
            ).order_by("pk")
        )
        approvable = [
            r.pk
            for r in pending
            if getattr(actor, "pk", None) in workflow.eligible_approvers(request=r)
        ]
        if not approvable:
            raise NotPermitted("you are not an approver of this bundle request at its stage")
        for pk in approvable:
            access_request_approve(actor=actor, request_id=pk, reason=reason)
    return len(approvable)


def bundle_request_deny(*, actor: Actor, bundle_request_id: int, reason: str) -> int:
    with transaction.atomic():
        pending = list(
            AccessRequest.objects.filter(
                bundle_request_id=bundle_request_id, status=AccessRequest.Status.PENDING
            ).order_by("pk")
        )
        for request in pending:
            access_request_deny(actor=actor, request_id=request.pk, reason=reason)
    return len(pending)


# --- the bundle itself (platform admins, and the configuration repository) ----------------
def _may_manage(actor: Actor) -> bool:
    return actor_may(actor, is_platform_admin, systems=CATALOG_SYSTEMS)


def _members(entitlements: Iterable[Entitlement]) -> list[Entitlement]:
    members = list(entitlements)
    if not members:
        raise ValidationError("a bundle has at least one entitlement", field="entitlements")
    return members


def _bundle_snapshot(bundle: AccessBundle) -> dict[str, Any]:
    return {
        "name": bundle.name,
        "description": bundle.description,
        "owner_team": bundle.owner_team.slug if bundle.owner_team is not None else None,
        "policy": bundle.policy.slug if bundle.policy is not None else None,
        "requestable": bundle.requestable,
        "entitlements": sorted(str(e) for e in bundle.entitlements.select_related("service")),
    }


def bundle_save(
    *,
    actor: Actor,
    slug: str,
    entitlements: Iterable[Entitlement],
    name: str,
    description: str = "",
    owner_team: Team | None = None,
    policy: ApprovalPolicy | None = None,
    requestable: bool = True,
) -> AccessBundle:
    """Create or change a bundle (by slug)."""
    if not _may_manage(actor):
        raise NotPermitted("only platform admins define bundles")
    members = _members(entitlements)
    with transaction.atomic():
        bundle = AccessBundle.objects.select_for_update().filter(slug=slug).first()
        before = None
        if bundle is None:
            bundle = AccessBundle(slug=slug)
        else:
            refuse_if_managed(bundle, actor=actor)
            before = _bundle_snapshot(bundle)
        bundle.name, bundle.description = name, description
        bundle.owner_team, bundle.policy, bundle.requestable = owner_team, policy, requestable
        bundle.updated_at = timezone.now()
        bundle.save()
        bundle.entitlements.set(members)
        after = _bundle_snapshot(bundle)
        if before != after:
            audit_record(
                actor=actor,
                action=actions.BUNDLE_SAVED,
                target=bundle,
                before=before,
                after={"slug": slug, **after},
            )
    return bundle


def bundle_delete(*, actor: Actor, bundle: AccessBundle) -> str:
    """Remove a bundle: what its rules granted is revoked; a bundle that was requested is
    kept, not requestable and without rules ("retired"), else deleted."""
    if not _may_manage(actor):
        raise NotPermitted("only platform admins remove bundles")
    with transaction.atomic():
        bundle = AccessBundle.objects.select_for_update().get(pk=bundle.pk)
        for rule in bundle.rules.all():
            assignment_rule_delete(actor=actor, rule=rule)
        bundle_assignments_apply(bundle=bundle)
        before = _bundle_snapshot(bundle)
        if bundle.requests.exists() or bundle.assignments.exists():
            bundle.requestable = False
            bundle.save(update_fields=["requestable"])
            audit_record(actor=actor, action=actions.BUNDLE_RETIRED, target=bundle, before=before)
            return "retired"
        audit_record(actor=actor, action=actions.BUNDLE_DELETED, target=bundle, before=before)
        bundle.delete()
        return "deleted"


# --- assignment rules ----------------------------------------------------------------------
@dataclass
class RuleSpec:
    slug: str
    teams: list[str] = field(default_factory=list)
    departments: list[str] = field(default_factory=list)
    worker_types: list[str] = field(default_factory=list)
    manager_subtree: str | None = None  # an e-mail
    enabled: bool = True

    @classmethod
    def of(cls, rule: AssignmentRule) -> RuleSpec:
        return cls(
            slug=rule.slug,
            teams=list(rule.teams),
            departments=list(rule.departments),
            worker_types=list(rule.worker_types),
            manager_subtree=rule.manager_subtree.email if rule.manager_subtree else None,
            enabled=rule.enabled,
        )


def _reports_below(manager: User) -> set[int]:
    ids: set[int] = set()
    frontier = [manager.pk]
    while frontier:
        level = list(
            User.objects.filter(manager_id__in=frontier)
            .exclude(pk__in=ids)
            .values_list("pk", flat=True)
        )
        ids.update(level)
        frontier = level
    return ids


def rule_matches(spec: RuleSpec) -> set[int]:
    """The active people a rule matches (every condition that is set must hold)."""
    if not spec.enabled:
        return set()
    if not (spec.teams or spec.departments or spec.worker_types or spec.manager_subtree):
        raise ValidationError(f"rule {spec.slug}: name at least one condition", field="rules")
    qs = User.objects.filter(is_active=True)
    if spec.teams:
        qs = qs.filter(Q(team__slug__in=spec.teams) | Q(memberships__team__slug__in=spec.teams))
    if spec.departments:
        ids: set[int] = set()
        for team in Team.objects.filter(slug__in=spec.departments):
            ids |= team_subtree_ids(team=team)
        qs = qs.filter(team_id__in=ids)
    if spec.worker_types:
        qs = qs.filter(worker_type__in=spec.worker_types)
    if spec.manager_subtree:
        manager = User.objects.filter(email__iexact=spec.manager_subtree).first()
        qs = qs.filter(pk__in=_reports_below(manager) if manager else set())
    return set(qs.values_list("pk", flat=True).distinct())


@dataclass
class AssignmentDiff:
    gain: list[tuple[User, Entitlement]] = field(default_factory=list)
    lose: list[BundleAssignment] = field(default_factory=list)

    def summary(self) -> dict[str, list[str]]:
        return {
            "gain": sorted(f"{u.email} {e}" for u, e in self.gain),
            "lose": sorted(f"{a.user.email} {a.entitlement}" for a in self.lose),
        }


def assignment_diff(
    *, bundle: AccessBundle | None, members: list[Entitlement], specs: list[RuleSpec]
) -> AssignmentDiff:
    """Who gains which member and which rule-made grants go, for a bundle (None: not saved
    yet) whose members and rules would be ``members`` and ``specs``."""
    matched: set[int] = set()
    for spec in specs:
        matched |= rule_matches(spec)
    member_ids = {e.pk for e in members}
    diff = AssignmentDiff()
    open_rows = (
        list(
            BundleAssignment.objects.filter(bundle=bundle, ended_at__isnull=True).select_related(
                "user", "entitlement__service", "grant"
            )
        )
        if bundle is not None
        else []
    )
    for row in open_rows:
        if row.user_id not in matched or row.entitlement_id not in member_ids:
            diff.lose.append(row)
    held = set(
        Grant.objects.filter(
            principal_id__in=matched, entitlement__in=members, status__in=Grant.HELD_STATUSES
        ).values_list("principal_id", "entitlement_id")
    )
    users = User.objects.filter(pk__in=matched).order_by("email")
    for user in users:
        for ent in _prerequisite_order(members):
            if (user.pk, ent.pk) not in held and ent.requestable:
                diff.gain.append((user, ent))
    return diff


def bundle_assignment_preview(
    *, bundle: AccessBundle, rules: list[RuleSpec] | None = None
) -> AssignmentDiff:
    """Who would gain and lose what if the bundle's rules were ``rules`` (default: the saved
    ones). Read-only; the same computation ``bundle_assignments_apply`` acts on."""
    specs = rules if rules is not None else [RuleSpec.of(r) for r in bundle.rules.all()]
    members = list(bundle.entitlements.select_related("service"))
    return assignment_diff(bundle=bundle, members=members, specs=specs)


def bundle_assignments_apply(*, bundle: AccessBundle, actor: Actor = ASSIGNMENT_RULES) -> dict:
    """Grant the bundle to whoever its rules match and revoke what a rule granted from whoever
    no longer matches. Returns the diff's summary and what was skipped (a refusal: SoD, a
    prerequisite, already held)."""
    from portal.core.errors import DomainError

    with transaction.atomic():
        diff = bundle_assignment_preview(bundle=bundle)
        skipped: list[str] = []
        ref = f"bundle:{bundle.slug}"
        for user, ent in diff.gain:
            try:
                with transaction.atomic():
                    grant = grant_birthright(
                        actor=actor,
                        principal=user,
                        entitlement=ent,
                        bundle_ref=ref,
                        reason="matched an assignment rule of the bundle",
                        origin="assignment",
                    )
                    BundleAssignment.objects.create(
                        bundle=bundle, user=user, entitlement=ent, grant=grant
                    )
            except DomainError as exc:
                skipped.append(f"{user.email} {ent}: {exc.message}")
        now = timezone.now()
        for row in diff.lose:
            if row.grant.status in Grant.HELD_STATUSES:
                grant_revoke(
                    row.grant,
                    actor=actor,
                    reason=f"no longer matches an assignment rule of {bundle.slug}",
                    origin=RevokeOrigin.ASSIGNMENT,
                )
            row.ended_at = now
            row.save(update_fields=["ended_at"])
    return {**diff.summary(), "skipped": skipped}


def assignment_rule_save(*, actor: Actor, bundle: AccessBundle, spec: RuleSpec) -> AssignmentRule:
    if not _may_manage(actor):
        raise NotPermitted("only platform admins define assignment rules")
    rule_matches(spec)  # refuses a rule without conditions
    manager = None
    if spec.manager_subtree:
        manager = User.objects.filter(email__iexact=spec.manager_subtree).first()
        if manager is None:
            raise ValidationError(f"no person {spec.manager_subtree!r}", field="manager_subtree")
    with transaction.atomic():
        refuse_if_managed(bundle, actor=actor)
        rule = AssignmentRule.objects.filter(bundle=bundle, slug=spec.slug).first()
        before = RuleSpec.of(rule).__dict__ if rule else None
        rule = rule or AssignmentRule(bundle=bundle, slug=spec.slug)
        rule.teams, rule.departments = sorted(spec.teams), sorted(spec.departments)
        rule.worker_types, rule.manager_subtree = sorted(spec.worker_types), manager
        rule.enabled, rule.updated_at = spec.enabled, timezone.now()
        rule.save()
        after = RuleSpec.of(rule).__dict__
        if before != after:
            audit_record(
                actor=actor,
                action=actions.ASSIGNMENT_RULE_SAVED,
                target=rule,
                before=before,
                after={"bundle": bundle.slug, **after},
            )
    return rule


def assignment_rule_delete(*, actor: Actor, rule: AssignmentRule) -> None:
    if not _may_manage(actor):
        raise NotPermitted("only platform admins remove assignment rules")
    with transaction.atomic():
        refuse_if_managed(rule.bundle, actor=actor)
        audit_record(
            actor=actor,
            action=actions.ASSIGNMENT_RULE_DELETED,
            target=rule,
            before={"bundle": rule.bundle.slug, **RuleSpec.of(rule).__dict__},
        )
        rule.delete()


def bundle_assignments_sweep() -> dict[str, int]:
    """Every bundle with rules, applied (people move teams and managers)."""
    counts = {"bundles": 0, "gained": 0, "lost": 0}
    for bundle in AccessBundle.objects.filter(
        Q(rules__isnull=False) | Q(assignments__ended_at__isnull=True)
    ).distinct():
        result = bundle_assignments_apply(bundle=bundle)
        counts["bundles"] += 1
        counts["gained"] += len(result["gain"]) - len(result["skipped"])
        counts["lost"] += len(result["lose"])
    return counts
