"""HTML pages of standards as policy (P6). Thin: authorize, call one service or selector, render."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from portal.core.errors import Conflict, DomainError
from portal.core.views import domain_errors

from . import charts, policies, selectors, services, tasks
from .document import KINDS, PolicyDocumentError, dump

MAX_UPLOAD = 512 * 1024


@require_GET
@login_required
def standard_list(request):
    standards = selectors.standards_for_viewer(viewer=request.user)
    return render(
        request,
        "standards/standard_list.html",
        {
            "standards": standards,
            "versions": selectors.versions_for_viewer(viewer=request.user)[:20],
            "may_edit": policies.may_edit_standards(request.user),
            "may_scan": policies.may_run_scan(request.user),
            "last_scan": selectors.last_scan(),
            "kinds": KINDS,
        },
    )


@require_GET
@login_required
def standard_export(request):
    selectors.standards_for_viewer(viewer=request.user)  # 404 for those who may not read
    version = selectors.current_version()
    text = dump(selectors.current_rules(), version=version.number if version else None)
    response = HttpResponse(text, content_type="application/yaml; charset=utf-8")
    name = f"standards-v{version.number}.yaml" if version else "standards.yaml"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@require_GET
@login_required
def version_detail(request, number: int):
    version = selectors.version_get(viewer=request.user, number=number)
    return render(request, "standards/version_detail.html", {"version": version})


def _submitted_text(request) -> str:
    upload = request.FILES.get("file")
    if upload is not None:
        if upload.size > MAX_UPLOAD:
            raise PolicyDocumentError([_problem(f"the file is larger than {MAX_UPLOAD} bytes")])
        try:
            return upload.read().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PolicyDocumentError([_problem("the file is not UTF-8 text")]) from exc
    return request.POST.get("yaml", "")


def _problem(reason: str):
    from .document import DocumentProblem

    return DocumentProblem(None, reason)


@require_http_methods(["GET", "POST"])
@login_required
@domain_errors
def standard_edit(request):
    if not policies.may_edit_standards(request.user):
        if policies.may_read_standards(request.user):
            raise PermissionDenied("only a platform admin changes the standards")
        raise Http404("no such page")
    version = selectors.current_version()
    context = {
        "version": version,
        "kinds": KINDS,
        "text": dump(selectors.current_rules(), version=version.number if version else None)
        if version
        else "",
        "diff": None,
        "problems": [],
    }
    if request.method == "POST":
        action = request.POST.get("action", "preview")
        try:
            text = _submitted_text(request)
            context["text"] = text
            if action == "apply":
                base = request.POST.get("base_version") or None
                applied, diff = services.standards_apply(
                    actor=request.user, text=text, base_version=int(base) if base else None
                )
                if applied is None:
                    messages.info(
                        request, "Nothing changed: the document equals the applied standards."
                    )
                else:
                    messages.success(
                        request,
                        f"Applied as version {applied.number}: {len(diff.added)} added, "
                        f"{len(diff.changed)} changed, {len(diff.removed)} removed. "
                        "The next scan records the violations.",
                    )
                return redirect("standards:list")
            context["diff"] = services.standards_preview(actor=request.user, text=text)
        except PolicyDocumentError as exc:
            context["problems"] = exc.problems
        except (Conflict, ValueError) as exc:
            context["problems"] = [_problem(getattr(exc, "message", str(exc)))]
        except DomainError as exc:
            context["problems"] = [_problem(exc.message)]
    status = 400 if context["problems"] else 200
    return render(request, "standards/standard_edit.html", context, status=status)


@require_POST
@login_required
def scan_now(request):
    if not policies.may_run_scan(request.user):
        raise PermissionDenied("only security or a platform admin starts a standards scan")
    tasks.standards_scan.delay()
    messages.success(request, "Scan started; violations and scores update when it finishes.")
    return redirect("standards:violations")


@require_GET
@login_required
def violation_list(request):
    status = request.GET.get("status", "open")
    if status not in ("open", "resolved", "all"):
        status = "open"
    qs = selectors.violation_list(
        viewer=request.user,
        status=status,
        standard=request.GET.get("standard", ""),
        team=request.GET.get("team", ""),
    )
    page = Paginator(qs, 100).get_page(request.GET.get("page"))
    return render(
        request,
        "standards/violation_list.html",
        {
            "page": page,
            "status": status,
            "standard": request.GET.get("standard", ""),
            "team": request.GET.get("team", ""),
            "last_scan": selectors.last_scan(),
            "may_scan": policies.may_run_scan(request.user),
        },
    )


@require_GET
@login_required
def violation_detail(request, pk: int):
    violation = selectors.violation_get(viewer=request.user, pk=pk)
    return render(request, "standards/violation_detail.html", {"v": violation})


@require_GET
@login_required
def compliance(request):
    latest = selectors.compliance_latest(viewer=request.user)
    figures = {}
    if latest["org"] is not None:
        figures["chart-org"] = charts.compliance_over_time(
            {"Organisation": selectors.compliance_series()}, title="Organisation compliance"
        )
    return render(request, "standards/compliance.html", {**latest, "figures": figures})


@require_GET
@login_required
def compliance_team(request, slug: str):
    team = selectors.compliance_team_get(viewer=request.user, slug=slug)
    series = {team.name: selectors.compliance_series(team=team)}
    series.update(selectors.team_service_series(team=team))
    figures = {"chart-team": charts.compliance_over_time(series, title=f"{team.name}: compliance")}
    open_count = selectors.violation_list(
        viewer=request.user, status="open", team=team.slug
    ).count()
    return render(
        request,
        "standards/compliance_team.html",
        {"team": team, "figures": figures, "series": series, "open_count": open_count},
    )
