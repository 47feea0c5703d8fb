"""HTML pages of access patterns (P1–P3). Thin: authorise, call one selector or service,
render. Figures come from ``patterns.charts`` as JSON data blocks drawn by charts.js."""

from __future__ import annotations

from collections import Counter

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from access.models import Entitlement, Grant
from access.policies import may_revoke_grant
from access.selectors import grants_for_viewer
from access.services import grant_revoke
from portal.core.errors import DomainError
from portal.core.views import add_form_error, domain_errors

from . import charts, policies, selectors, services
from .forms import AdoptForm, EntitlementsForm, ReasonForm, RunForm
from .models import MiningRun


def _entitlement_choices(ids) -> list[tuple[int, str]]:
    return [
        (e.pk, f"{e.service.slug}:{e.slug} ({e.risk})")
        for e in Entitlement.objects.filter(pk__in=set(ids))
        .select_related("service")
        .order_by("service__slug", "slug")
    ]


@require_GET
@login_required
def index(request):
    user = request.user
    return render(
        request,
        "patterns/index.html",
        {
            "teams": selectors.teams_for_map(viewer=user),
            "services": selectors.services_for_map(viewer=user),
            "runs": selectors.runs_for_viewer(viewer=user)[:10],
            "bundles": selectors.bundles_for_viewer(viewer=user).filter(active=True),
            "may_start": policies.may_start_mining(user),
        },
    )


# --- Access map (P1) ----------------------------------------------------------------------
def _map_page(request, *, matrix, title: str, team=None, service=None):
    comparison = person = None
    person_id = request.GET.get("person", "")
    if team is not None and person_id:
        if not person_id.isdigit():
            raise Http404("no such person")
        comparison = selectors.team_comparison(matrix=matrix, person_id=int(person_id))
        person = next(r for r in matrix.rows if r["id"] == int(person_id))
    cols = {c["id"]: c for c in matrix.cols}
    bundle = selectors.bundle_for_team(team=team) if team is not None else None
    bundle_ids = set()
    if bundle is not None and bundle.current is not None:
        bundle_ids = set(bundle.current.entitlements.values_list("pk", flat=True))
    return render(
        request,
        "patterns/map.html",
        {
            "title": title,
            "team": team,
            "service": service,
            "matrix": matrix,
            "figures": {"chart-map": charts.access_heatmap(matrix, title=title)}
            if matrix.rows and matrix.cols
            else {},
            "person": person,
            "comparison": comparison,
            "unusual": [(cols[line.entitlement_id], line) for line in comparison.unusual]
            if comparison
            else [],
            "missing": [(cols[line.entitlement_id], line) for line in comparison.missing]
            if comparison
            else [],
            "bundle": bundle,
            "bundle_ids": bundle_ids,
            "popular": [(cols[e], n) for e, n in matrix.holders.most_common(15) if e in cols],
        },
    )


@require_GET
@login_required
def team_map(request, slug: str):
    team = selectors.team_for_map(viewer=request.user, slug=slug)
    matrix = selectors.team_access_matrix(team=team)
    return _map_page(request, matrix=matrix, title=f"Access map: {team.name}", team=team)


@require_GET
@login_required
def service_map(request, slug: str):
    service = selectors.service_for_map(viewer=request.user, slug=slug)
    matrix = selectors.service_access_matrix(service=service)
    return _map_page(request, matrix=matrix, title=f"Access map: {service.name}", service=service)


# --- Mining runs (P2) ---------------------------------------------------------------------
def _run_form(request, data=None):
    return RunForm(
        data,
        teams=selectors.teams_for_map(viewer=request.user),
        services=selectors.services_for_map(viewer=request.user),
    )


@require_http_methods(["GET", "POST"])
@login_required
@domain_errors
def run_list(request):
    user = request.user
    form = None
    if policies.may_start_mining(user):
        form = _run_form(request, request.POST if request.method == "POST" else None)
        initial_team = request.GET.get("team")
        if request.method == "GET" and initial_team:
            form.initial = {"scope": "team", "team": initial_team}
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                run = services.mining_run_create(
                    actor=user,
                    team=data["team"] if data["scope"] == "team" else None,
                    service=data["service"] if data["scope"] == "service" else None,
                    time_limit=data["time_limit"],
                )
            except DomainError as exc:
                add_form_error(form, exc)
            else:
                messages.success(request, f"Mining run #{run.pk} queued.")
                return redirect("patterns:run-detail", pk=run.pk)
    elif request.method == "POST":
        raise PermissionDenied("only platform admins and security start role mining")
    return render(
        request,
        "patterns/run_list.html",
        {"runs": selectors.runs_for_viewer(viewer=user)[:100], "form": form},
    )


@require_GET
@login_required
def run_detail(request, pk: int):
    run = selectors.run_get(viewer=request.user, pk=pk)
    return render(
        request,
        "patterns/run_detail.html",
        {
            "run": run,
            "proposals": selectors.run_proposals(run=run) if run.status == "done" else [],
            "may_adopt": policies.may_manage_bundles(request.user),
        },
    )


@require_GET
@login_required
def run_progress(request, pk: int):
    """HTMX polling target: the progress bar; once finished, the page reloads itself."""
    run = selectors.run_get(viewer=request.user, pk=pk)
    response = render(request, "patterns/partials/_run_progress.html", {"run": run})
    if run.is_finished and request.headers.get("HX-Request"):
        response["HX-Refresh"] = "true"
    return response


@require_http_methods(["GET", "POST"])
@login_required
@domain_errors
def proposal_adopt(request, pk: int, index: int):
    run = selectors.run_get(viewer=request.user, pk=pk)
    if not policies.may_manage_bundles(request.user):
        raise PermissionDenied("only platform admins adopt standard bundles")
    if run.status != MiningRun.Status.DONE:
        raise Http404("the run has no proposals")
    proposal = get_object_or_404(run.proposals, index=index)
    choices = _entitlement_choices(proposal.entitlement_ids)
    team = run.team
    if team is None:  # a service run: the team most of the proposal's people are in
        from accounts.models import User

        counts = Counter(
            User.objects.filter(pk__in=proposal.user_ids).values_list("team_id", flat=True)
        )
        counts.pop(None, None)
        if counts:
            from accounts.models import Team

            team = Team.objects.filter(pk=counts.most_common(1)[0][0]).first()
    initial = {
        "entitlements": [c for c, _ in choices],
        "team": team.slug if team else None,
        "note": f"adopted from mining run #{run.pk}, proposal {proposal.index}",
    }
    form = AdoptForm(
        request.POST if request.method == "POST" else None, initial=initial, choices=choices
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            version = services.bundle_adopt(
                actor=request.user,
                team=data["team"],
                entitlement_ids=data["entitlements"],
                proposal=proposal,
                note=data["note"],
                name=data["name"],
            )
        except DomainError as exc:
            add_form_error(form, exc)
        else:
            messages.success(request, f"Adopted as {version}.")
            return redirect("patterns:bundle-detail", pk=version.bundle_id)
    return render(
        request,
        "patterns/proposal_adopt.html",
        {"run": run, "proposal": proposal, "users": len(proposal.user_ids), "form": form},
    )


# --- Standard bundles ---------------------------------------------------------------------
@require_GET
@login_required
def bundle_list(request):
    return render(
        request,
        "patterns/bundle_list.html",
        {"bundles": selectors.bundles_for_viewer(viewer=request.user).order_by("team__name")},
    )


@require_GET
@login_required
def bundle_detail(request, pk: int):
    bundle = selectors.bundle_get(viewer=request.user, pk=pk)
    versions = list(
        bundle.versions.select_related("created_by", "source_proposal__run").prefetch_related(
            "entitlements__service"
        )
    )
    return render(
        request,
        "patterns/bundle_detail.html",
        {
            "bundle": bundle,
            "versions": versions,
            "current": versions[0] if versions else None,
            "applications": selectors.bundle_applications(bundle=bundle),
            "flagged": selectors.bundle_flagged(bundle=bundle),
            "may_manage": policies.may_manage_bundles(request.user),
            "retire_form": ReasonForm(),
        },
    )


@require_http_methods(["GET", "POST"])
@login_required
@domain_errors
def bundle_edit(request, pk: int):
    bundle = selectors.bundle_get(viewer=request.user, pk=pk)
    if not policies.may_manage_bundles(request.user):
        raise PermissionDenied("only platform admins change standard bundles")
    current = bundle.current
    current_ids = list(current.entitlements.values_list("pk", flat=True)) if current else []
    team_held = Grant.objects.filter(
        principal__team=bundle.team, principal__is_active=True, status=Grant.Status.ACTIVE
    ).values_list("entitlement_id", flat=True)
    choices = _entitlement_choices(set(current_ids) | set(team_held))
    form = EntitlementsForm(
        request.POST if request.method == "POST" else None,
        initial={"entitlements": current_ids},
        choices=choices,
    )
    if request.method == "POST" and form.is_valid():
        try:
            version = services.bundle_adopt(
                actor=request.user,
                team=bundle.team,
                entitlement_ids=form.cleaned_data["entitlements"],
                note=form.cleaned_data["note"],
            )
        except DomainError as exc:
            add_form_error(form, exc)
        else:
            messages.success(request, f"Saved as {version}.")
            return redirect("patterns:bundle-detail", pk=bundle.pk)
    return render(request, "patterns/bundle_edit.html", {"bundle": bundle, "form": form})


@require_POST
@login_required
@domain_errors
def bundle_retire(request, pk: int):
    bundle = selectors.bundle_get(viewer=request.user, pk=pk)
    form = ReasonForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say why the bundle is retired.")
        return redirect("patterns:bundle-detail", pk=bundle.pk)
    try:
        services.bundle_retire(
            actor=request.user, bundle_id=bundle.pk, reason=form.cleaned_data["reason"]
        )
    except DomainError as exc:
        if exc.status == 403:
            raise
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{bundle.name} retired: joiners no longer get it.")
    return redirect("patterns:bundle-detail", pk=bundle.pk)


# --- Outliers (P3) ------------------------------------------------------------------------
@require_GET
@login_required
def outliers(request):
    team = None
    slug = request.GET.get("team", "")
    if slug:
        team = selectors.team_for_map(viewer=request.user, slug=slug)
    report = selectors.outliers_for_viewer(viewer=request.user, team=team)
    revocable = set()
    if report.outliers:
        grants = Grant.objects.select_related("entitlement__service").filter(
            pk__in=[r.grant_id for r in report.outliers]
        )
        # one policy answer per service (plus the viewer's own grants): no query per row
        answers: dict = {}
        for g in grants:
            key = "own" if g.principal_id == request.user.pk else g.entitlement.service_id
            if key not in answers:
                answers[key] = may_revoke_grant(request.user, g)
            if answers[key]:
                revocable.add(g.pk)
    return render(
        request,
        "patterns/outliers.html",
        {
            "report": report,
            "team": team,
            "teams": selectors.teams_for_map(viewer=request.user),
            "revocable": revocable,
        },
    )


@require_POST
@login_required
@domain_errors
def outlier_revoke(request, grant_id: int):
    grant = get_object_or_404(grants_for_viewer(viewer=request.user), pk=grant_id)
    form = ReasonForm(request.POST)
    back = request.POST.get("next") or ""
    target = back if back.startswith("/patterns/outliers/") else "/patterns/outliers/"
    if not form.is_valid():
        messages.error(request, "Say why the access is revoked.")
        return redirect(target)
    try:
        grant_revoke(actor=request.user, grant_id=grant.pk, reason=form.cleaned_data["reason"])
    except DomainError as exc:
        if exc.status == 403:
            raise
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Grant #{grant.pk} ({grant.entitlement}) is being revoked.")
    if request.headers.get("HX-Request"):
        return HttpResponse(status=204, headers={"HX-Redirect": target})
    return redirect(target)
