"""Every read of standards a user sees, scoped by the viewer (not visible: 404)."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404

from access.models import Service
from access.selectors import viewer_team_ids
from accounts.models import Team

from .document import Rule
from .models import ComplianceSnapshot, PolicyVersion, ScanRun, Standard, Violation
from .policies import may_read_standards, sees_all_violations


def current_version() -> PolicyVersion | None:
    return PolicyVersion.objects.order_by("-number").first()


def current_rules() -> list[Rule]:
    return [Rule.from_model(s) for s in Standard.objects.filter(active=True)]


def standards_for_viewer(*, viewer) -> QuerySet[Standard]:
    if not may_read_standards(viewer):
        raise Http404("no such page")
    return Standard.objects.filter(active=True).select_related("version")


def versions_for_viewer(*, viewer) -> QuerySet[PolicyVersion]:
    if not may_read_standards(viewer):
        raise Http404("no such page")
    return PolicyVersion.objects.select_related("author")


def version_get(*, viewer, number: int) -> PolicyVersion:
    return get_object_or_404(versions_for_viewer(viewer=viewer), number=number)


def violations_for_viewer(*, viewer) -> QuerySet[Violation]:
    """Admins, security and auditors see every violation; everyone else those owned by one
    of their teams (the standard's owner team) or on a service their team owns."""
    qs = Violation.objects.all()
    if sees_all_violations(viewer):
        return qs
    teams = viewer_team_ids(viewer)
    if not teams:
        return qs.none()
    return qs.filter(Q(owner_team_id__in=teams) | Q(service__owner_team_id__in=teams))


def violation_list(
    *, viewer, status: str = "open", standard: str = "", team: str = ""
) -> QuerySet[Violation]:
    qs = violations_for_viewer(viewer=viewer).select_related("standard", "owner_team", "service")
    if status == "open":
        qs = qs.filter(resolved_at__isnull=True)
    elif status == "resolved":
        qs = qs.filter(resolved_at__isnull=False)
    if standard:
        qs = qs.filter(standard__key=standard)
    if team:
        qs = qs.filter(Q(owner_team__slug=team) | Q(service__owner_team__slug=team))
    return qs.order_by("resolved_at", "-standard__severity", "-last_seen", "-pk")


def violation_get(*, viewer, pk: int) -> Violation:
    qs = violations_for_viewer(viewer=viewer).select_related("standard", "owner_team", "service")
    return get_object_or_404(qs, pk=pk)


def last_scan() -> ScanRun | None:
    return ScanRun.objects.filter(status=ScanRun.Status.DONE).order_by("-started_at").first()


def compliance_teams_for_viewer(*, viewer) -> QuerySet[Team]:
    if sees_all_violations(viewer):
        return Team.objects.all()
    return Team.objects.filter(pk__in=viewer_team_ids(viewer))


def compliance_team_get(*, viewer, slug: str) -> Team:
    return get_object_or_404(compliance_teams_for_viewer(viewer=viewer), slug=slug)


def compliance_latest(*, viewer) -> dict:
    """The latest scan's scores: the org (for those who see everything), visible teams and
    the services those teams own."""
    scan = last_scan()
    if scan is None:
        return {"scan": None, "org": None, "teams": [], "services": []}
    teams = compliance_teams_for_viewer(viewer=viewer)
    snaps = ComplianceSnapshot.objects.filter(scan=scan)
    org = snaps.filter(kind="org").first() if sees_all_violations(viewer) else None
    team_rows = list(
        snaps.filter(kind="team", team__in=teams).select_related("team").order_by("team__name")
    )
    service_rows = list(
        snaps.filter(kind="service", service__owner_team__in=teams)
        .select_related("service", "service__owner_team")
        .order_by("service__name")
    )
    return {"scan": scan, "org": org, "teams": team_rows, "services": service_rows}


def compliance_series(*, team: Team | None = None, service: Service | None = None, limit=90):
    """(taken_at, score %) of the last ``limit`` scans, oldest first."""
    qs = ComplianceSnapshot.objects.all()
    if team is not None:
        qs = qs.filter(kind="team", team=team)
    elif service is not None:
        qs = qs.filter(kind="service", service=service)
    else:
        qs = qs.filter(kind="org")
    rows = list(qs.order_by("-taken_at").values_list("taken_at", "subjects", "compliant")[:limit])
    return [(t, round(100.0 * c / s, 1) if s else None) for t, s, c in reversed(rows)]


def team_service_series(*, team: Team, limit: int = 90) -> dict[str, list]:
    out: dict[str, list] = {}
    for service in Service.objects.filter(owner_team=team).order_by("name"):
        series = compliance_series(service=service, limit=limit)
        if series:
            out[service.slug] = series
    return out
