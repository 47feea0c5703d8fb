"""Every read a user sees in the access app, scoped by what the viewer may see."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone

from accounts.models import Membership, User
from accounts.selectors import user_reports

from .models import (
    AccessRequest,
    Approval,
    ApprovalAssignment,
    CatalogChangeProposal,
    Entitlement,
    Grant,
    Service,
)
from .policies import may_change_controls, sees_all_access
from .workflow import active_delegations


def viewer_team_ids(viewer: User) -> set[int]:
    ids = set(Membership.objects.filter(user=viewer).values_list("team_id", flat=True))
    if viewer.team_id:
        ids.add(viewer.team_id)
    return ids


# --- Catalog --------------------------------------------------------------------------
def services_list(
    *, viewer: User, q: str = "", team: str = "", tier: str = "", risk: str = ""
) -> QuerySet[Service]:
    """The catalog is visible to every signed-in person (retired services are not listed;
    their pages stay for their history)."""
    qs = (
        Service.objects.filter(retired_at__isnull=True)
        .select_related("owner_team")
        .annotate(entitlement_count=Count("entitlements"))
    )
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(slug__icontains=q) | Q(description__icontains=q))
    if team:
        qs = qs.filter(owner_team__slug=team)
    if tier != "" and tier is not None and str(tier).isdigit():
        qs = qs.filter(tier=int(tier))
    if risk:
        # Exists, not a join: a join after the Count annotation would multiply the count.
        qs = qs.filter(Exists(Entitlement.objects.filter(service=OuterRef("pk"), risk=risk)))
    return qs.order_by("name")


def service_get(*, viewer: User, slug: str) -> Service:
    return get_object_or_404(Service.objects.select_related("owner_team"), slug=slug)


def entitlements_list(
    *, viewer: User, service: str = "", q: str = "", risk: str = "", requestable_only: bool = False
) -> QuerySet[Entitlement]:
    qs = Entitlement.objects.filter(retired_at__isnull=True).select_related(
        "service", "service__owner_team", "policy"
    )
    if service:
        qs = qs.filter(service__slug=service)
    if q:
        qs = qs.filter(
            Q(name__icontains=q)
            | Q(slug__icontains=q)
            | Q(service__name__icontains=q)
            | Q(service__slug__icontains=q)
        )
    if risk:
        qs = qs.filter(risk=risk)
    if requestable_only:
        qs = qs.filter(requestable=True)
    return qs.order_by("service__name", "name")


def entitlement_get(*, viewer: User, pk: int) -> Entitlement:
    return get_object_or_404(
        Entitlement.objects.select_related("service", "service__owner_team", "policy"), pk=pk
    )


def service_holders(*, service: Service) -> QuerySet[Grant]:
    return (
        Grant.objects.filter(
            entitlement__service=service, status__in=[Grant.Status.ACTIVE, Grant.Status.PENDING]
        )
        .select_related("principal", "principal__team", "entitlement")
        .order_by("entitlement__name", "principal__email")
    )


def catalog_change_proposals(
    *, viewer: User, status: str = CatalogChangeProposal.Status.PENDING
) -> QuerySet[CatalogChangeProposal]:
    """Proposed changes of entitlements' controls, for those who decide them (admins,
    security); nobody else sees the list."""
    if not may_change_controls(viewer):
        return CatalogChangeProposal.objects.none()
    return (
        CatalogChangeProposal.objects.filter(status=status)
        .select_related("entitlement__service", "proposed_by", "decided_by")
        .order_by("created_at")
    )


def entitlement_change_proposals(*, entitlement: Entitlement) -> list[CatalogChangeProposal]:
    """The pending proposals of one entitlement (shown on its edit page)."""
    return list(
        CatalogChangeProposal.objects.filter(
            entitlement=entitlement, status=CatalogChangeProposal.Status.PENDING
        )
        .select_related("proposed_by")
        .order_by("created_at")
    )


# --- Requests -------------------------------------------------------------------------
def access_requests_for_viewer(*, viewer: User) -> QuerySet[AccessRequest]:
    """Requests the viewer may see: their own, made for them, waiting on them (or people they
    stand in for), their reports', their services'. Security, auditors and admins see all."""
    qs = AccessRequest.objects.all()
    if sees_all_access(viewer):
        return qs
    delegators = list(
        active_delegations().filter(delegate=viewer).values_list("delegator_id", flat=True)
    )
    approver_ids = [viewer.pk, *delegators]
    report_ids = list(user_reports(user=viewer).values_list("pk", flat=True))
    teams = viewer_team_ids(viewer)
    cond = (
        Q(requester=viewer)
        | Q(principal=viewer)
        | Q(
            Exists(
                ApprovalAssignment.objects.filter(
                    request=OuterRef("pk"), approver_id__in=approver_ids
                )
            )
        )
        | Q(Exists(Approval.objects.filter(request=OuterRef("pk"), approver=viewer)))
        | Q(entitlement__service__owner_team_id__in=teams)
    )
    if report_ids:
        cond |= Q(principal_id__in=report_ids)
    return qs.filter(cond)


def access_request_get(*, viewer: User, pk: int) -> AccessRequest:
    qs = access_requests_for_viewer(viewer=viewer).select_related(
        "requester",
        "principal",
        "principal__team",
        "entitlement",
        "entitlement__service",
        "extends_grant",
    )
    return get_object_or_404(qs, pk=pk)


def my_requests(*, viewer: User) -> QuerySet[AccessRequest]:
    return (
        AccessRequest.objects.filter(Q(requester=viewer) | Q(principal=viewer))
        .select_related("principal", "requester", "entitlement", "entitlement__service")
        .order_by("-created_at")
    )


def approval_inbox(*, viewer: User) -> QuerySet[AccessRequest]:
    """Exactly the pending requests whose current stage waits on the viewer (or on someone
    the viewer stands in for today), of active principals, and that the viewer has not
    approved at any stage (one person approves one stage of a request)."""
    delegators = list(
        active_delegations().filter(delegate=viewer).values_list("delegator_id", flat=True)
    )
    waiting = ApprovalAssignment.objects.filter(
        request=OuterRef("pk"),
        stage=OuterRef("current_stage"),
        approver_id__in=[viewer.pk, *delegators],
    )
    already = Approval.objects.filter(request=OuterRef("pk")).filter(
        Q(approver=viewer) | Q(on_behalf_of=viewer, decision=Approval.Decision.APPROVE)
    )
    return (
        AccessRequest.objects.filter(
            status=AccessRequest.Status.PENDING,
            principal__is_active=True,
            principal__status=User.Status.ACTIVE,
        )
        .filter(Exists(waiting))
        .exclude(Exists(already))
        .exclude(requester=viewer)
        .exclude(principal=viewer)
        .select_related(
            "requester", "principal", "principal__team", "entitlement", "entitlement__service"
        )
        .order_by("created_at")
    )


def request_timeline(*, request: AccessRequest):
    from audit.selectors import audit_events_for_target

    return audit_events_for_target(target_type=request._meta.label_lower, target_id=request.pk)


def principal_other_access(*, principal: User, limit: int = 20) -> list[Grant]:
    return list(
        Grant.objects.filter(principal=principal, status=Grant.Status.ACTIVE)
        .select_related("entitlement", "entitlement__service")
        .order_by("entitlement__service__name")[:limit]
    )


def peers_holding(*, principal: User, entitlement: Entitlement, limit: int = 10) -> list[User]:
    if not principal.team_id:
        return []
    return list(
        User.objects.filter(
            team_id=principal.team_id,
            is_active=True,
            grants__entitlement=entitlement,
            grants__status=Grant.Status.ACTIVE,
        )
        .exclude(pk=principal.pk)
        .distinct()
        .order_by("name")[:limit]
    )


# --- Grants ---------------------------------------------------------------------------
def grants_for_viewer(*, viewer: User) -> QuerySet[Grant]:
    qs = Grant.objects.all()
    if sees_all_access(viewer):
        return qs
    report_ids = list(user_reports(user=viewer).values_list("pk", flat=True))
    teams = viewer_team_ids(viewer)
    cond = Q(principal=viewer) | Q(entitlement__service__owner_team_id__in=teams)
    if report_ids:
        cond |= Q(principal_id__in=report_ids)
    return qs.filter(cond)


def grant_get(*, viewer: User, pk: int) -> Grant:
    qs = grants_for_viewer(viewer=viewer).select_related(
        "principal", "entitlement", "entitlement__service", "request"
    )
    return get_object_or_404(qs, pk=pk)


def my_grants(*, viewer: User, include_ended: bool = False) -> QuerySet[Grant]:
    qs = Grant.objects.filter(principal=viewer).select_related(
        "entitlement", "entitlement__service"
    )
    if not include_ended:
        qs = qs.exclude(status=Grant.Status.REVOKED)
    return qs.order_by("ends_at", "-created_at")


def expiring_soon(*, viewer: User, days: int = 7) -> QuerySet[Grant]:
    return my_grants(viewer=viewer).filter(
        status=Grant.Status.ACTIVE, ends_at__lte=timezone.now() + timedelta(days=days)
    )


# --- Page reads (HTML views) ------------------------------------------------------------
def approval_inbox_rows(*, viewer: User) -> QuerySet[AccessRequest]:
    """The inbox with its context in a bounded number of queries: how many of the principal's
    teammates hold the entitlement (``peers_count`` of ``team_size``) and the principal's other
    active access (``principal.other_access``, at most 10 per person)."""
    from django.db.models import IntegerField, Prefetch, Subquery
    from django.db.models.functions import Coalesce

    peers = (
        Grant.objects.filter(
            entitlement_id=OuterRef("entitlement_id"),
            status=Grant.Status.ACTIVE,
            principal__team_id=OuterRef("principal__team_id"),
            principal__is_active=True,
        )
        .exclude(principal_id=OuterRef("principal_id"))
        .order_by()
        .values("entitlement_id")
        .annotate(n=Count("principal_id", distinct=True))
        .values("n")
    )
    team = (
        User.objects.filter(team_id=OuterRef("principal__team_id"), is_active=True)
        .exclude(pk=OuterRef("principal_id"))
        .order_by()
        .values("team_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    other = (
        Grant.objects.filter(status=Grant.Status.ACTIVE)
        .select_related("entitlement", "entitlement__service")
        .order_by("entitlement__service__name", "entitlement__name")
    )
    return (
        approval_inbox(viewer=viewer)
        .annotate(
            peers_count=Coalesce(Subquery(peers, output_field=IntegerField()), 0),
            team_size=Coalesce(Subquery(team, output_field=IntegerField()), 0),
        )
        .prefetch_related(
            Prefetch("principal__grants", queryset=other[:10], to_attr="other_access")
        )
    )


def approval_inbox_count(*, viewer: User) -> int:
    return approval_inbox(viewer=viewer).count()


def request_approvals(*, request: AccessRequest) -> list[Approval]:
    return list(
        request.approvals.select_related("approver", "on_behalf_of").order_by("stage", "created_at")
    )


def open_request_for(*, viewer: User, principal: User, entitlement_ids) -> AccessRequest | None:
    """The open request (visible to the viewer) that blocks a new one, e.g. after a double submit."""
    return (
        access_requests_for_viewer(viewer=viewer)
        .filter(
            principal=principal,
            entitlement_id__in=list(entitlement_ids),
            status=AccessRequest.Status.PENDING,
        )
        .order_by("created_at")
        .first()
    )


def catalog_owner_teams():
    from accounts.models import Team

    return Team.objects.filter(Exists(Service.objects.filter(owner_team=OuterRef("pk")))).order_by(
        "name"
    )


def delegations_given(*, viewer: User):
    from .models import Delegation

    return (
        Delegation.objects.filter(delegator=viewer)
        .select_related("delegate")
        .order_by("-starts_on", "-pk")
    )


def delegations_received(*, viewer: User):
    from .models import Delegation

    return (
        Delegation.objects.filter(delegate=viewer)
        .select_related("delegator")
        .order_by("-starts_on", "-pk")
    )
