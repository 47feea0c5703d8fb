"""Audit trail pages: search, per-object history, export download (auditors, security, admins)."""

from __future__ import annotations

import io
import json
import zipfile

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from portal.core.errors import DomainError
from portal.core.views import add_form_error

from . import policies, selectors
from .forms import AuditExportForm, AuditSearchForm
from .models import AuditEvent
from .services import audit_export_create

PER_PAGE = 50


def _require_reader(user) -> None:
    if not policies.may_read_audit(user):
        raise Http404("No such page")


def _is_partial(request) -> bool:
    htmx = getattr(request, "htmx", None)
    return htmx is not None and bool(htmx) and not htmx.history_restore_request


def _query_without_page(request) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


@require_GET
@login_required
def search(request):
    _require_reader(request.user)
    form = AuditSearchForm(request.GET or None)
    filters = selectors.AuditFilters()
    if form.is_bound and form.is_valid():
        filters = selectors.AuditFilters(**form.cleaned_data)
    elif form.is_bound:
        filters = None
    events = (
        selectors.audit_events_search(viewer=request.user, filters=filters)
        if filters is not None
        else AuditEvent.objects.none()
    )
    page = Paginator(events, PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "form": form,
        "page": page,
        "query": _query_without_page(request),
        "export_form": AuditExportForm(),
    }
    if _is_partial(request):
        return render(request, "audit/partials/_results.html", context)
    return render(request, "audit/event_search.html", context)


@require_GET
@login_required
def history(request, target_type: str, target_id: str):
    _require_reader(request.user)
    events = selectors.audit_history_for_viewer(
        viewer=request.user, target_type=target_type, target_id=target_id
    )
    page = Paginator(events, PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "query": _query_without_page(request),
        "target_type": target_type,
        "target_id": target_id,
    }
    if _is_partial(request):
        return render(request, "audit/partials/_results.html", context)
    return render(request, "audit/event_history.html", context)


@require_http_methods(["POST"])
@login_required
def export(request):
    _require_reader(request.user)
    if not policies.may_export_audit(request.user):
        raise Http404("No such page")
    form = AuditExportForm(request.POST)
    if form.is_valid():
        fmt = form.cleaned_data["format"]
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        name = f"audit-export-{stamp}.{fmt}"
        try:
            data, manifest = audit_export_create(
                actor=request.user,
                fmt=fmt,
                since=form.cleaned_data["since"],
                until=form.cleaned_data["until"],
                file_name=name,
            )
        except DomainError as exc:
            add_form_error(form, exc)
        else:
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                archive.writestr(name, data)
                archive.writestr(
                    f"{name}.manifest.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n"
                )
            response = HttpResponse(buffer.getvalue(), content_type="application/zip")
            response["Content-Disposition"] = f'attachment; filename="{name}.zip"'
            return response
    context = {
        "form": AuditSearchForm(),
        "page": Paginator(AuditEvent.objects.none(), PER_PAGE).get_page(1),
        "query": "",
        "export_form": form,
    }
    return render(request, "audit/event_search.html", context, status=400)
