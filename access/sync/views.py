"""Pages of provisioning: failed jobs (retry), manual tasks, drift, follow-ups, break-glass.

Thin views: authorize with access.sync.policies (404 for what the viewer may not see),
call one service or selector, render.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from connectors.base import ConnectorError
from portal.core.errors import DomainError, NotFound

from .. import selectors as access_selectors
from ..models import Entitlement, ReconciliationRun
from ..services import grants_direct, lifecycle, provisioning
from . import metrics, policies, selectors


def _int(raw, default: int = 0) -> int:
    try:
        return int(raw)
    except (TypeError, ValueError):
        return default


# --- Hub ------------------------------------------------------------------------------
@require_GET
@login_required
def hub(request):
    user = request.user
    return render(
        request,
        "access/sync/hub.html",
        {
            "open_tasks": selectors.manual_tasks_for(viewer=user).count(),
            "open_reviews": selectors.follow_ups_for(viewer=user).count(),
            "may_see_failed": policies.may_see_failed_jobs(user),
            "failed": selectors.job_counts()["failed"] if policies.may_see_failed_jobs(user) else 0,
            "may_see_drift": policies.may_see_org_drift(user),
        },
    )


# --- Failed jobs (platform team) ------------------------------------------------------
@require_GET
@login_required
def failed_jobs(request):
    if not policies.may_see_failed_jobs(request.user):
        raise Http404("no such page")
    return render(
        request,
        "access/sync/failed_jobs.html",
        {
            "jobs": selectors.failed_jobs()[:200],
            "counts": selectors.job_counts(),
            "may_retry": policies.may_retry_jobs(request.user),
        },
    )


@require_POST
@login_required
def job_retry(request, pk: int):
    if not policies.may_retry_jobs(request.user):
        raise Http404("no such page")
    try:
        provisioning.sync_job_retry(
            actor=request.user, job_id=pk, reason=request.POST.get("reason", "")[:300]
        )
    except DomainError as exc:
        messages.error(request, f"Not retried: {exc.message}.")
    else:
        messages.success(request, f"Job #{pk} queued again.")
    return redirect("access_sync:failed-jobs")


# --- Manual tasks ---------------------------------------------------------------------
@require_GET
@login_required
def manual_tasks(request):
    return render(
        request,
        "access/sync/manual_tasks.html",
        {"tasks": selectors.manual_tasks_for(viewer=request.user)[:200]},
    )


@require_POST
@login_required
def manual_task_answer(request, pk: int):
    try:
        provisioning.manual_task_answer(
            actor=request.user,
            task_id=pk,
            outcome=request.POST.get("outcome", ""),
            note=request.POST.get("note", "")[:500],
        )
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except DomainError as exc:
        messages.error(request, f"Not saved: {exc.message}.")
    else:
        messages.success(request, "Task answered.")
    return redirect("access_sync:manual-tasks")


# --- Drift ----------------------------------------------------------------------------
@require_GET
@login_required
def drift_overview(request):
    if not policies.may_see_org_drift(request.user):
        raise Http404("no such page")
    runs = selectors.org_drift()
    totals = {
        "missing": sum(r.missing for r in runs),
        "unmanaged": sum(r.unmanaged for r in runs),
        "wrong_level": sum(r.wrong_level for r in runs),
    }
    return render(request, "access/sync/drift_overview.html", {"runs": runs, "totals": totals})


def _visible_service(request, slug: str):
    service = access_selectors.service_get(viewer=request.user, slug=slug)
    if not policies.may_see_drift(request.user, service):
        raise Http404("no such page")
    return service


@require_GET
@login_required
def service_sync(request, slug: str):
    service = _visible_service(request, slug)
    return render(
        request,
        "access/sync/service_sync.html",
        {
            "service": service,
            "health": metrics.connector_health(service),
            "last_run": selectors.last_run(service=service),
            "progress": selectors.run_progress(service=service),
            "drift": selectors.current_drift(service=service)[:500],
            "recent_jobs": service.sync_jobs.order_by("-created_at", "-pk")[:20],
            "may_reconcile": policies.may_reconcile(request.user, service),
            "plan": None,
        },
    )


@require_GET
@login_required
def service_reconcile_progress(request, slug: str, pk: int):
    """HTMX polling target: the progress bar of a reconciliation run, until it ends."""
    service = _visible_service(request, slug)
    progress = selectors.run_progress(service=service, run_id=pk)
    if progress is None:
        raise Http404("no such run")
    response = render(
        request,
        "access/sync/partials/_reconcile_progress.html",
        {"service": service, "progress": progress},
    )
    if not progress.running and request.headers.get("HX-Request"):
        response["HX-Refresh"] = "true"  # the drift table below follows the finished run
    return response


@require_POST
@login_required
def service_reconcile(request, slug: str):
    from .. import tasks
    from ..services.reconciliation import (
        reconcilable,
        reconcile_run_not_queued,
        reconcile_run_start,
        reconcile_service,
    )

    service = _visible_service(request, slug)
    if not policies.may_reconcile(request.user, service):
        raise Http404("no such page")
    mode = request.POST.get("mode", "dry_run")
    if mode not in ("dry_run", *ReconciliationRun.Mode.values):
        messages.error(request, "Pick dry run, report or enforce.")
        return redirect("access_sync:service", slug=service.slug)
    if not reconcilable(service):
        messages.error(request, "This service's connector cannot list holders.")
        return redirect("access_sync:service", slug=service.slug)
    if mode == "dry_run":
        try:
            plan = reconcile_service(service_id=service.pk, dry_run=True, actor=request.user)
        except DomainError as exc:
            messages.error(request, exc.message)
            return redirect("access_sync:service", slug=service.slug)
        except ConnectorError as exc:  # show it; a dry run writes nothing
            messages.error(request, f"Dry run failed: {exc.message}")
            return redirect("access_sync:service", slug=service.slug)
        return render(
            request,
            "access/sync/service_sync.html",
            {
                "service": service,
                "health": metrics.connector_health(service),
                "last_run": selectors.last_run(service=service),
                "drift": selectors.current_drift(service=service)[:500],
                "recent_jobs": service.sync_jobs.order_by("-created_at", "-pk")[:20],
                "may_reconcile": True,
                "plan": plan,
            },
        )
    try:
        run = reconcile_run_start(service_id=service.pk, mode=mode, actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("access_sync:service", slug=service.slug)
    try:
        tasks.reconcile_service.apply_async(
            args=[service.pk, mode, request.user.pk, run.pk], queue=_sync_queue()
        )
    except Exception:
        reconcile_run_not_queued(
            run_id=run.pk, actor=request.user, reason="the task queue was unavailable"
        )
        messages.error(request, "The task queue is unavailable; try again shortly.")
    else:
        messages.success(request, f"Reconciliation ({mode}) started.")
    return redirect("access_sync:service", slug=service.slug)


def _sync_queue() -> str:
    from django.conf import settings

    return settings.TOLLGATE_SYNC_QUEUE


# --- Follow-up reviews ----------------------------------------------------------------
@require_GET
@login_required
def follow_ups(request):
    return render(
        request,
        "access/sync/follow_ups.html",
        {"items": selectors.follow_ups_for(viewer=request.user)[:200]},
    )


@require_POST
@login_required
def follow_up_answer(request, pk: int):
    try:
        lifecycle.follow_up_answer(
            actor=request.user,
            item_id=pk,
            decision=request.POST.get("decision", ""),
            note=request.POST.get("note", "")[:2000],
        )
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except DomainError as exc:
        messages.error(request, f"Not saved: {exc.message}.")
    else:
        messages.success(request, "Review answered.")
    return redirect("access_sync:follow-ups")


# --- Break-glass ----------------------------------------------------------------------
@require_http_methods(["GET", "POST"])
@login_required
def break_glass(request):
    from django.conf import settings

    entitlements = selectors.break_glass_entitlements()
    error = None
    if request.method == "POST":
        ent_id = _int(request.POST.get("entitlement"))
        if not Entitlement.objects.filter(pk=ent_id, allows_break_glass=True).exists():
            error = "Pick an entitlement that allows break-glass access."
        else:
            try:
                grant = grants_direct.grant_break_glass(
                    actor=request.user,
                    entitlement_id=ent_id,
                    reason=request.POST.get("reason", "")[:2000],
                    hours=_int(request.POST.get("hours"), -1),
                )
            except DomainError as exc:
                error = exc.message
            else:
                messages.warning(
                    request,
                    "Break-glass access taken. Security and the owners have been told; "
                    "a follow-up review will ask about it.",
                )
                return redirect("access:grant-detail", pk=grant.pk)
    return render(
        request,
        "access/sync/break_glass.html",
        {
            "entitlements": entitlements,
            "max_hours": settings.TOLLGATE_BREAK_GLASS_MAX_HOURS,
            "error": error,
        },
        status=400 if error else 200,
    )


# --- Metrics --------------------------------------------------------------------------
@require_GET
@login_required
def metrics_view(request):
    from ..policies import sees_all_access

    if not sees_all_access(request.user):
        raise Http404("no such page")
    return HttpResponse(metrics.prometheus_text(), content_type="text/plain; version=0.0.4")
