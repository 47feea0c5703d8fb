"""HTML pages: coverage, sources and imports (with upload and live progress), rules (with
preview), the unallocated explorer. Every view asks a policy or a scoped selector first."""

from __future__ import annotations

import datetime as dt
import re

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from portal.core.errors import DomainError

from . import selectors, services
from .attribution import RuleSpec
from .forms import RuleForm, UploadForm
from .models import AttributionRule, ImportRun, ReattributionRun
from .policies import may_edit_costs, may_view_cost_admin


def _admin_view_or_404(request) -> None:
    if not may_view_cost_admin(request.user):
        raise Http404("no such page")


def _editor_or_404(request) -> None:
    if not may_edit_costs(request.user):
        raise Http404("no such page")


@require_GET
@login_required
def index(request):
    _admin_view_or_404(request)
    return redirect("costs:coverage")


@require_GET
@login_required
def coverage(request):
    rows = selectors.allocation_coverage(viewer=request.user)
    return render(request, "costs/coverage.html", {"rows": rows})


@require_http_methods(["GET", "POST"])
@login_required
def sources(request):
    _admin_view_or_404(request)
    can_edit = may_edit_costs(request.user)
    form = UploadForm()
    if request.method == "POST":
        _editor_or_404(request)
        form = UploadForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            if upload.size > settings.COSTS_UPLOAD_MAX_BYTES:
                form.add_error("file", "the file is larger than the upload limit")
            else:
                try:
                    run = services.import_upload_start(
                        actor=request.user,
                        source_name=form.cleaned_data["source"],
                        upload=upload,
                        period=form.cleaned_data.get("period") or None,
                    )
                except DomainError as exc:
                    form.add_error(None, exc.message)
                else:
                    return redirect("costs:import-detail", pk=run.pk)
    return render(
        request,
        "costs/source_list.html",
        {
            "sources": selectors.sources_for_viewer(viewer=request.user),
            "runs": selectors.import_runs_for_viewer(viewer=request.user)[:50],
            "form": form,
            "can_edit": can_edit,
        },
        status=400 if request.method == "POST" else 200,
    )


def _progress_context(run: ImportRun) -> dict:
    progress = cache.get(services.progress_key(run.pk)) or {}
    total = progress.get("total") or run.file_size or 0
    done = progress.get("bytes") or 0
    return {
        "run": run,
        "rows": progress.get("rows", run.rows_read),
        "percent": int(done * 100 / total) if total else 0,
        "active": run.status in (ImportRun.Status.PENDING, ImportRun.Status.RUNNING),
    }


@require_GET
@login_required
def import_detail(request, pk: int):
    run = selectors.import_run_get_for_viewer(viewer=request.user, pk=pk)
    return render(request, "costs/import_detail.html", _progress_context(run))


@require_GET
@login_required
def import_progress(request, pk: int):
    run = selectors.import_run_get_for_viewer(viewer=request.user, pk=pk)
    context = _progress_context(run)
    response = render(request, "costs/partials/_import_progress.html", context)
    if not context["active"] and request.htmx:
        response["HX-Refresh"] = "true"  # show the final page (errors, totals) once done
    return response


@require_GET
@login_required
def rule_list(request):
    rules = selectors.rules_for_viewer(viewer=request.user)
    return render(
        request,
        "costs/rule_list.html",
        {
            "rules": rules,
            "can_edit": may_edit_costs(request.user),
            "reattributions": ReattributionRun.objects.order_by("-created_at")[:5],
            "periods": selectors.billing_periods(viewer=request.user)[:24],
        },
    )


_PREFILL = ("resource_pattern", "sub_account_id", "billing_account_id", "service_name", "region")


def _rule_form_page(request, rule: AttributionRule | None):
    _editor_or_404(request)
    if request.method == "POST":
        form = RuleForm(request.POST)
        if form.is_valid():
            data, shares = form.rule_data()
            try:
                saved = services.rule_save(actor=request.user, rule=rule, data=data, shares=shares)
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(
                    request,
                    f"Rule “{saved.name}” saved. Re-attribute past periods to move their lines.",
                )
                return redirect("costs:rule-list")
        status = 400
    else:
        if rule is not None:
            initial = RuleForm.initial_for(rule)
        else:
            initial = {"enabled": True, "method": "direct", "resource_pattern_kind": "glob"}
            for key in _PREFILL:  # "make a rule from this" in the unallocated explorer
                if request.GET.get(key):
                    initial[key] = request.GET[key][:500]
            if initial.get("resource_pattern"):
                initial["resource_pattern"] = re.sub(
                    r"([*?\[])", r"[\1]", initial["resource_pattern"]
                )
        form = RuleForm(initial=initial)
        status = 200
    return render(request, "costs/rule_form.html", {"form": form, "rule": rule}, status=status)


@require_http_methods(["GET", "POST"])
@login_required
def rule_create(request):
    return _rule_form_page(request, None)


@require_http_methods(["GET", "POST"])
@login_required
def rule_edit(request, pk: int):
    rule = selectors.rule_get_for_viewer(viewer=request.user, pk=pk)
    return _rule_form_page(request, rule)


@require_POST
@login_required
def rule_preview(request):
    _editor_or_404(request)
    form = RuleForm(request.POST)
    rule_id = request.POST.get("rule_id") or None
    if not form.is_valid():
        return render(request, "costs/partials/_rule_preview.html", {"form": form}, status=400)
    current = {r.pk: r for r in selectors.rules_for_viewer(viewer=request.user)}
    try:
        rule_id = int(rule_id) if rule_id else None
    except ValueError:
        raise Http404("no such rule") from None
    if rule_id is not None and rule_id not in current:
        raise Http404("no such rule")
    proposed_rule = form.to_spec(rule_id)
    position = form.cleaned_data.get("position")
    if position is None:
        position = max((r.position for r in current.values()), default=0) + 10
    ordered = [
        (r.position, r.pk, RuleSpec.from_model(r))
        for r in current.values()
        if r.enabled and r.pk != rule_id
    ]
    if form.cleaned_data.get("enabled"):
        ordered.append((position, rule_id or 10**12, proposed_rule))
    ordered.sort(key=lambda t: (t[0], t[1]))
    preview = selectors.rule_change_preview(
        viewer=request.user, proposed=[spec for _, _, spec in ordered]
    )
    return render(request, "costs/partials/_rule_preview.html", {"preview": preview, "form": form})


@require_POST
@login_required
def reattribute(request):
    _editor_or_404(request)
    periods = [p for p in request.POST.getlist("period") if p]
    try:
        run = services.reattribution_request(actor=request.user, periods=periods)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        run.refresh_from_db()
        messages.success(
            request,
            f"Re-attribution #{run.pk} {run.get_status_display().lower()}"
            + (f": {run.lines_changed:,} lines moved." if run.status == "succeeded" else "."),
        )
    return redirect("costs:rule-list")


@require_GET
@login_required
def unallocated(request):
    periods = selectors.billing_periods(viewer=request.user)
    period = None
    raw = request.GET.get("period")
    if raw:
        try:
            period = dt.date.fromisoformat(raw)
        except ValueError:
            raise Http404("no such period") from None
        if period not in periods:
            raise Http404("no such period")
    elif periods:
        period = periods[0]
    summary = selectors.unallocated_summary(viewer=request.user, period=period) if period else None
    return render(
        request,
        "costs/unallocated.html",
        {
            "periods": periods[:24],
            "summary": summary,
            "can_edit": may_edit_costs(request.user),
            "rule_new_url": reverse("costs:rule-create"),
        },
    )
