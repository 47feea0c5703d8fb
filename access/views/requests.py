"""A2–A4 request pages: new request, preview, list, detail, decisions, the approvals inbox."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.selectors import user_reports
from portal.core.errors import Conflict, DomainError, NotPermitted, ValidationError
from portal.core.memo import lookup_scope
from portal.core.views import add_form_error, domain_errors

from .. import policies, selectors, services, workflow
from ..forms import (
    REQUEST_FIELD_ALIASES,
    AccessRequestForm,
    BulkDecisionForm,
    DecisionForm,
)
from ..models import AccessRequest, Approval, Entitlement
from ..panels import request_panels
from ._common import (
    INBOX_PAGE_SIZE,
    LIST_PAGE_SIZE,
    MAX_PICKED,
    PICKER_RESULTS,
    _timeline,
    int_list,
    is_htmx_partial,
    paginate,
    querystring_without_page,
)


def _principals(user) -> list:
    """Who the viewer may request for: themself, then their reports."""
    return [user, *user_reports(user=user).filter(is_active=True).order_by("name", "email")]


def _picked(user, ids) -> list:
    if not ids:
        return []
    by_pk = {e.pk: e for e in selectors.entitlements_list(viewer=user).filter(pk__in=ids)}
    return [by_pk[i] for i in ids if i in by_pk]


@dataclass(frozen=True)
class PreviewStage:
    """One stage of a previewed request, with who would approve it."""

    name: str
    required: int
    approvers: list[str]


@dataclass(frozen=True)
class PreviewRow:
    """One entitlement of the request form's preview."""

    preview: workflow.Preview
    entitlement: Entitlement
    stages: list[PreviewStage]


@dataclass(frozen=True)
class StageRow:
    """One stage on a request's page: its state and the approvals it has."""

    number: int
    name: str
    required: int
    state: str
    approvals: list[Approval]
    approvers: list[str]


def _preview_rows(*, user, principal, entitlements, duration_days) -> list[PreviewRow]:
    # One page: the policies, owner teams and delegations are read once for all the rows.
    with lookup_scope():
        return _rows(
            user=user, principal=principal, entitlements=entitlements, duration_days=duration_days
        )


def _rows(*, user, principal, entitlements, duration_days) -> list[PreviewRow]:
    rows: list[PreviewRow] = []
    for ent in entitlements:
        result = workflow.preview(
            requester=user, principal=principal, entitlement=ent, duration_days=duration_days
        )
        probe = AccessRequest(requester=user, principal=principal, entitlement=ent)
        stages = [
            PreviewStage(
                name=stage["name"],
                required=stage["required"],
                approvers=workflow.describe_stage_approvers(request=probe, stage=stage),
            )
            for stage in result.stages
        ]
        rows.append(PreviewRow(preview=result, entitlement=ent, stages=stages))
    return rows


def _duration_bounds(entitlements) -> tuple[int | None, int | None]:
    if not entitlements:
        return None, None
    limit = min(e.max_duration_days for e in entitlements)
    default = min(min(e.default_duration_days for e in entitlements), limit)
    return default, limit


def _principal_from(raw, principals):
    for p in principals:
        if str(p.pk) == str(raw):
            return p
    return principals[0]


def _int_or_none(raw):
    return int(raw) if raw is not None and str(raw).isdigit() else None


@require_http_methods(["GET", "POST"])
@login_required
@domain_errors
def request_new(request):
    user = request.user
    principals = _principals(user)
    if request.method == "POST":
        form = AccessRequestForm(request.POST, principals=principals)
        picked_ids = int_list(request.POST.getlist("entitlement"))
        if len(request.POST.getlist("entitlement")) > MAX_PICKED:
            form.add_error("entitlement", f"pick at most {MAX_PICKED} entitlements at once")
        if form.is_valid():
            data = form.cleaned_data
            picked = sorted(data["entitlement"], key=lambda e: picked_ids.index(e.pk))
            try:
                created = services.access_request_submit_many(
                    actor=user,
                    principal=data["principal"],
                    entitlements=picked,
                    justification=data["justification"],
                    duration_days=data["duration_days"],
                )
            except Conflict as exc:
                existing = selectors.open_request_for(
                    viewer=user, principal=data["principal"], entitlement_ids=picked_ids
                )
                messages.warning(
                    request, f"Nothing new was submitted: {exc.message}. Here is the open request."
                )
                if existing is not None:
                    return redirect("access:request-detail", pk=existing.pk)
                return redirect("access:request-list")
            except ValidationError as exc:
                add_form_error(form, exc, REQUEST_FIELD_ALIASES)
            else:
                if len(created) == 1:
                    messages.success(request, f"Request #{created[0].pk} submitted.")
                    return redirect("access:request-detail", pk=created[0].pk)
                numbers = ", ".join(f"#{r.pk}" for r in created)
                messages.success(request, f"{len(created)} requests submitted: {numbers}.")
                return redirect("access:request-list")
        principal = _principal_from(request.POST.get("principal"), principals)
        duration = _int_or_none(request.POST.get("duration_days"))
    else:
        if request.GET.get("bundle"):  # /requests/new/?bundle=<slug>: the bundle picked
            return redirect("access:bundle-request-new", slug=request.GET["bundle"][:80])
        picked_ids = int_list(request.GET.getlist("entitlement"))
        form = None
        principal = _principal_from(request.GET.get("principal"), principals)
        duration = None
    picked = _picked(user, picked_ids)
    default, limit = _duration_bounds(picked)
    if duration is None:
        duration = default
    if form is None:
        form = AccessRequestForm(
            initial={"principal": principal.pk, "duration_days": duration}, principals=principals
        )
    context = {
        "form": form,
        "picked": picked,
        "principals": principals,
        "principal": principal,
        "duration": duration,
        "duration_limit": limit,
        "rows": _preview_rows(
            user=user, principal=principal, entitlements=picked, duration_days=duration
        ),
    }
    return render(request, "access/request_form.html", context)


@require_GET
@login_required
def request_preview(request):
    """The preview panel: stages, approvers, peers, auto-approval, refusals, warnings."""
    user = request.user
    principals = _principals(user)
    principal = _principal_from(request.GET.get("principal"), principals)
    picked = _picked(user, int_list(request.GET.getlist("entitlement")))
    default, limit = _duration_bounds(picked)
    duration = _int_or_none(request.GET.get("duration_days"))
    context = {
        "rows": _preview_rows(
            user=user,
            principal=principal,
            entitlements=picked,
            duration_days=duration if duration is not None else default,
        ),
        "duration_limit": limit,
        "oob": True,
    }
    return render(request, "access/partials/_request_preview.html", context)


@require_GET
@login_required
def request_picker(request):
    """The entitlement picker: what is ticked stays ticked, then the search matches."""
    user = request.user
    picked = _picked(user, int_list(request.GET.getlist("entitlement")))
    q = (request.GET.get("q") or "").strip()[:100]
    matches = []
    if q:
        matches = list(
            selectors.entitlements_list(viewer=user, q=q, requestable_only=True).exclude(
                pk__in=[e.pk for e in picked]
            )[:PICKER_RESULTS]
        )
    return render(
        request,
        "access/partials/_request_picker.html",
        {"picked": picked, "matches": matches, "q": q},
    )


# --- A2/A3 My requests and request detail ---------------------------------------------
STATUS_FILTERS = [s for s, _ in AccessRequest.Status.choices]


@require_GET
@login_required
def request_list(request):
    qs = selectors.my_requests(viewer=request.user)
    status = request.GET.get("status", "")
    if status in STATUS_FILTERS:
        qs = qs.filter(status=status)
    else:
        status = ""
    context = {
        "page": paginate(request, qs, LIST_PAGE_SIZE),
        "status": status,
        "statuses": AccessRequest.Status.choices,
        "query": querystring_without_page(request),
    }
    return render(request, "access/request_list.html", context)


def _stage_rows(req: AccessRequest, approvals) -> list[StageRow]:
    rows: list[StageRow] = []
    for index, stage in enumerate(req.stages):
        if req.auto_approval_reason:
            state = "skipped"
        elif index < req.current_stage or (req.status == "approved" and index == req.current_stage):
            state = "done"
        elif index == req.current_stage:
            state = "current" if req.is_open else req.status
        else:
            state = "waiting" if req.is_open else "not reached"
        approvers = []
        if req.is_open and index >= req.current_stage:
            approvers = workflow.describe_stage_approvers(request=req, stage=stage)
        rows.append(
            StageRow(
                number=index + 1,
                name=stage["name"],
                required=stage["required"],
                state=state,
                approvals=[a for a in approvals if a.stage == index],
                approvers=approvers,
            )
        )
    return rows


@require_GET
@login_required
def request_detail(request, pk: int):
    user = request.user
    req = selectors.access_request_get(viewer=user, pk=pk)
    approvals = selectors.request_approvals(request=req)
    may_decide = req.is_open and policies.may_decide_request(user, req)
    context = {
        "req": req,
        "stages": _stage_rows(req, approvals),
        "timeline": _timeline(req),
        "grant": req.grants.order_by("-created_at").first(),
        "may_cancel": req.is_open and policies.may_cancel_request(user, req),
        "may_decide": may_decide,
        "decision_form": DecisionForm(),
        "panels": request_panels(request=req, viewer=user),
    }
    if may_decide:
        context["peers"] = selectors.peers_holding(
            principal=req.principal, entitlement=req.entitlement
        )
        context["other_access"] = selectors.principal_other_access(principal=req.principal)
    return render(request, "access/request_detail.html", context)


@require_POST
@login_required
@domain_errors
def request_cancel(request, pk: int):
    req = selectors.access_request_get(viewer=request.user, pk=pk)
    try:
        services.access_request_cancel(
            actor=request.user, request_id=req.pk, reason=request.POST.get("reason", "")[:2000]
        )
    except Conflict as exc:
        messages.error(request, f"Could not cancel: {exc.message}.")
    else:
        messages.success(request, f"Request #{req.pk} cancelled.")
    return redirect("access:request-detail", pk=req.pk)


def _decide(request, pk: int, decision: str):
    """Approve or deny one request; an HTMX call gets the inbox row back."""
    user = request.user
    req = selectors.access_request_get(viewer=user, pk=pk)
    form = DecisionForm(request.POST)
    reason = form.cleaned_data["reason"].strip() if form.is_valid() else ""
    status, error = 200, ""
    try:
        if decision == "approve":
            services.access_request_approve(actor=user, request_id=req.pk, reason=reason)
        else:
            services.access_request_deny(actor=user, request_id=req.pk, reason=reason)
    except NotPermitted as exc:
        if not is_htmx_partial(request):
            raise PermissionDenied(exc.message) from exc
        status, error = 403, exc.message
    except Conflict as exc:
        status, error = 409, exc.message
    except ValidationError as exc:
        status, error = 400, exc.message
    req.refresh_from_db()
    if is_htmx_partial(request):
        return render(
            request,
            "access/partials/_inbox_row_done.html",
            {"req": req, "error": error, "decision": decision},
            status=status,
        )
    if error:
        messages.error(request, f"Request #{req.pk}: {error}.")
    elif decision == "approve":
        done = "approved" if req.status == AccessRequest.Status.APPROVED else "approval recorded"
        messages.success(request, f"Request #{req.pk}: {done}.")
    else:
        messages.success(request, f"Request #{req.pk}: denied.")
    if request.POST.get("back") == "inbox":
        return redirect("access:approvals")
    return redirect("access:request-detail", pk=req.pk)


@require_POST
@login_required
@domain_errors
def request_approve(request, pk: int):
    return _decide(request, pk, "approve")


@require_POST
@login_required
@domain_errors
def request_deny(request, pk: int):
    return _decide(request, pk, "deny")


# --- A4 Approvals inbox ---------------------------------------------------------------
@require_GET
@login_required
def approvals(request):
    page = paginate(request, selectors.approval_inbox_rows(viewer=request.user), INBOX_PAGE_SIZE)
    return render(
        request,
        "access/approval_inbox.html",
        {"page": page, "decision_form": DecisionForm(), "query": querystring_without_page(request)},
    )


@require_POST
@login_required
def approvals_bulk(request):
    """Each ticked request goes through the service on its own; failures are reported."""
    user = request.user
    form = BulkDecisionForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, f"Nothing decided: {error}.")
        return redirect("access:approvals")
    ids = list(dict.fromkeys(form.cleaned_data["ids"]))
    decision, reason = form.cleaned_data["decision"], form.cleaned_data["reason"].strip()
    visible = set(
        selectors.access_requests_for_viewer(viewer=user)
        .filter(pk__in=ids)
        .values_list("pk", flat=True)
    )
    done, failed = [], []
    for pk in ids:
        if pk not in visible:
            failed.append(f"#{pk}: not found")
            continue
        try:
            if decision == "approve":
                services.access_request_approve(actor=user, request_id=pk, reason=reason)
            else:
                services.access_request_deny(actor=user, request_id=pk, reason=reason)
        except DomainError as exc:
            failed.append(f"#{pk}: {exc.message}")
        else:
            done.append(f"#{pk}")
    verb = "approved" if decision == "approve" else "denied"
    if done:
        messages.success(request, f"{len(done)} {verb}: {', '.join(done)}.")
    for failure in failed:
        messages.error(request, f"Not {verb} {failure}.")
    return redirect("access:approvals")


# --- A5 Grants ------------------------------------------------------------------------
