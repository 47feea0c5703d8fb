"""HTML pages of the access app (A1–A5, request side).

Thin views: parse input, authorize through policies and scoped selectors, call one
service, render. Objects the viewer may not see answer 404; domain errors map to
403 (NotPermitted), 404 (NotFound), a message and a redirect, or 409 for HTMX (Conflict),
and form errors (ValidationError, on its ``field`` when it names one).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.selectors import team_members, user_reports
from audit.registry import ACTIONS
from portal.core.errors import Conflict, DomainError, NotPermitted, ValidationError
from portal.core.views import add_form_error, domain_errors

from . import policies, selectors, services, workflow
from .forms import (
    REQUEST_FIELD_ALIASES,
    AccessRequestForm,
    BulkDecisionForm,
    CatalogFilterForm,
    DecisionForm,
    DelegationForm,
    EntitlementForm,
    RevokeForm,
    ServiceForm,
)
from .models import AccessRequest, Grant
from .panels import request_panels

CATALOG_PAGE_SIZE = 25
LIST_PAGE_SIZE = 25
INBOX_PAGE_SIZE = 50
MAX_PICKED = 20
PICKER_RESULTS = 20


# --- Helpers --------------------------------------------------------------------------
def is_htmx_partial(request) -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request


def paginate(request, qs, per_page: int):
    return Paginator(qs, per_page).get_page(request.GET.get("page"))


def querystring_without_page(request) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


def int_list(values, limit: int = MAX_PICKED) -> list[int]:
    out: list[int] = []
    for v in values:
        if str(v).isdigit() and int(v) not in out:
            out.append(int(v))
    return out[:limit]


def _timeline(target) -> list[dict]:
    return [
        {"event": e, "description": ACTIONS.get(e.action, e.action)}
        for e in selectors.request_timeline(request=target)
    ]


# --- A1 Catalog -----------------------------------------------------------------------
@require_GET
@login_required
def catalog(request):
    teams = list(selectors.catalog_owner_teams())
    form = CatalogFilterForm(request.GET, teams=teams)
    filters = form.filters()
    page = paginate(
        request, selectors.services_list(viewer=request.user, **filters), CATALOG_PAGE_SIZE
    )
    context = {
        "form": form,
        "page": page,
        "filters": filters,
        "query": querystring_without_page(request),
        "may_create": policies.may_create_service(request.user),
    }
    if is_htmx_partial(request):
        return render(request, "access/partials/_catalog_results.html", context)
    return render(request, "access/service_list.html", context)


@require_GET
@login_required
def service_detail(request, slug: str):
    service = selectors.service_get(viewer=request.user, slug=slug)
    entitlements = selectors.entitlements_list(viewer=request.user, service=service.slug)
    entitlements = entitlements.prefetch_related("prerequisites__service")
    holders = None
    if policies.may_see_holders(request.user, service):
        holders = selectors.service_holders(service=service)
    return render(
        request,
        "access/service_detail.html",
        {
            "service": service,
            "entitlements": entitlements,
            "owners": team_members(team=service.owner_team),
            "holders": holders,
            "may_edit": policies.may_edit_service(request.user, service),
        },
    )


@require_http_methods(["GET", "POST"])
@login_required
@domain_errors
def service_create(request):
    if not policies.may_create_service(request.user):
        raise Http404("no such page")
    form = ServiceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            service = services.service_create(
                actor=request.user,
                slug=data["slug"],
                name=data["name"],
                owner_team=data["owner_team"],
                tier=data["tier"],
                description=data["description"],
                docs_url=data["docs_url"],
            )
        except (ValidationError, Conflict) as exc:
            add_form_error(form, exc)
        else:
            messages.success(request, f"Service {service.name} added to the catalog.")
            return redirect("access:service-detail", slug=service.slug)
    return render(request, "access/service_form.html", {"form": form, "service": None})


def _editable_service(request, slug: str):
    service = selectors.service_get(viewer=request.user, slug=slug)
    if not policies.may_edit_service(request.user, service):
        raise Http404("no such page")  # do not leak which catalog pages are editable
    return service


@require_http_methods(["GET", "POST"])
@login_required
@domain_errors
def service_edit(request, slug: str):
    service = _editable_service(request, slug)
    may_move = policies.may_create_service(request.user)
    initial = {
        "name": service.name,
        "owner_team": service.owner_team.slug,
        "tier": service.tier,
        "description": service.description,
        "docs_url": service.docs_url,
    }
    form = ServiceForm(request.POST or None, initial=initial, editing=True, may_move=may_move)
    if request.method == "POST" and form.is_valid():
        changes = {k: v for k, v in form.cleaned_data.items() if k in services.SERVICE_FIELDS}
        try:
            services.service_update(actor=request.user, service=service, **changes)
        except ValidationError as exc:
            add_form_error(form, exc)
        else:
            messages.success(request, f"Service {service.name} saved.")
            return redirect("access:service-detail", slug=service.slug)
    return render(request, "access/service_form.html", {"form": form, "service": service})


@require_http_methods(["GET", "POST"])
@login_required
@domain_errors
def entitlement_create(request, slug: str):
    service = _editable_service(request, slug)
    form = EntitlementForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            ent = services.entitlement_create(
                actor=request.user,
                service=service,
                slug=form.cleaned_data["slug"],
                **form.values(),
            )
        except (ValidationError, Conflict) as exc:
            add_form_error(form, exc)
        else:
            messages.success(request, f"Entitlement {ent.name} added to {service.name}.")
            return redirect("access:service-detail", slug=service.slug)
    return render(
        request,
        "access/entitlement_form.html",
        {"form": form, "service": service, "entitlement": None},
    )


@require_http_methods(["GET", "POST"])
@login_required
@domain_errors
def entitlement_edit(request, slug: str, pk: int):
    service = _editable_service(request, slug)
    ent = selectors.entitlement_get(viewer=request.user, pk=pk)
    if ent.service_id != service.pk:
        raise Http404("no such entitlement")
    initial = {name: getattr(ent, name) for name in EntitlementForm.SERVICE_FIELDS}
    form = EntitlementForm(request.POST or None, initial=initial, editing=True)
    if request.method == "POST" and form.is_valid():
        try:
            services.entitlement_update(actor=request.user, entitlement=ent, **form.values())
        except ValidationError as exc:
            add_form_error(form, exc)
        else:
            messages.success(request, f"Entitlement {ent.name} saved.")
            return redirect("access:service-detail", slug=service.slug)
    return render(
        request,
        "access/entitlement_form.html",
        {"form": form, "service": service, "entitlement": ent},
    )


# --- A2 Request form ------------------------------------------------------------------
def _principals(user) -> list:
    """Who the viewer may request for: themself, then their reports."""
    return [user, *user_reports(user=user).filter(is_active=True).order_by("name", "email")]


def _picked(user, ids) -> list:
    if not ids:
        return []
    by_pk = {e.pk: e for e in selectors.entitlements_list(viewer=user).filter(pk__in=ids)}
    return [by_pk[i] for i in ids if i in by_pk]


def _preview_rows(*, user, principal, entitlements, duration_days) -> list[dict]:
    rows = []
    for ent in entitlements:
        result = workflow.preview(
            requester=user, principal=principal, entitlement=ent, duration_days=duration_days
        )
        probe = AccessRequest(requester=user, principal=principal, entitlement=ent)
        stages = [
            {
                "name": stage["name"],
                "required": stage["required"],
                "approvers": workflow.describe_stage_approvers(request=probe, stage=stage),
            }
            for stage in result.stages
        ]
        rows.append({"preview": result, "entitlement": ent, "stages": stages})
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


def _stage_rows(req: AccessRequest, approvals) -> list[dict]:
    rows = []
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
            {
                "number": index + 1,
                "name": stage["name"],
                "required": stage["required"],
                "state": state,
                "approvals": [a for a in approvals if a.stage == index],
                "approvers": approvers,
            }
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
@require_GET
@login_required
def grant_list(request):
    include_ended = request.GET.get("ended") == "1"
    qs = selectors.my_grants(viewer=request.user, include_ended=include_ended)
    return render(
        request,
        "access/grant_list.html",
        {
            "page": paginate(request, qs, LIST_PAGE_SIZE),
            "include_ended": include_ended,
            "query": querystring_without_page(request),
            "revoke_form": RevokeForm(),
        },
    )


@require_GET
@login_required
def grant_detail(request, pk: int):
    grant = selectors.grant_get(viewer=request.user, pk=pk)
    may_revoke = grant.status in Grant.HELD_STATUSES and policies.may_revoke_grant(
        request.user, grant
    )
    request_visible = grant.request_id is not None and (
        selectors.access_requests_for_viewer(viewer=request.user)
        .filter(pk=grant.request_id)
        .exists()
    )
    return render(
        request,
        "access/grant_detail.html",
        {
            "grant": grant,
            "timeline": _timeline(grant),
            "may_revoke": may_revoke,
            "request_visible": request_visible,
            "revoke_form": RevokeForm(),
        },
    )


@require_POST
@login_required
@domain_errors
def grant_revoke(request, pk: int):
    grant = selectors.grant_get(viewer=request.user, pk=pk)
    form = RevokeForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say why you give up or revoke this access.")
        return redirect("access:grant-detail", pk=grant.pk)
    try:
        services.grant_revoke(
            actor=request.user, grant_id=grant.pk, reason=form.cleaned_data["reason"]
        )
    except (Conflict, ValidationError) as exc:
        messages.error(request, f"Could not revoke: {exc.message}.")
        return redirect("access:grant-detail", pk=grant.pk)
    messages.success(request, f"Access to {grant.entitlement} revoked.")
    if grant.principal_id == request.user.pk:
        return redirect("access:grant-list")
    return redirect("access:grant-detail", pk=grant.pk)


# --- A3 Delegations -------------------------------------------------------------------
@require_http_methods(["GET", "POST"])
@login_required
@domain_errors
def delegation_list(request):
    user = request.user
    form = DelegationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            delegation = services.delegation_create(
                actor=user,
                delegate=data["delegate"],
                starts_on=data["starts_on"],
                ends_on=data["ends_on"],
                reason=data["reason"],
            )
        except ValidationError as exc:
            add_form_error(form, exc)
        else:
            messages.success(
                request,
                f"{delegation.delegate.email} may approve for you from {delegation.starts_on} "
                f"to {delegation.ends_on}.",
            )
            return redirect("access:delegation-list")
    return render(
        request,
        "access/delegation_list.html",
        {
            "form": form,
            "given": selectors.delegations_given(viewer=user),
            "received": selectors.delegations_received(viewer=user),
            "today": timezone.localdate(),
        },
    )


@require_POST
@login_required
@domain_errors
def delegation_end(request, pk: int):
    try:
        services.delegation_end(actor=request.user, delegation_id=pk)
    except Conflict as exc:
        messages.error(request, f"Could not end it: {exc.message}.")
    else:
        messages.success(request, "Delegation ended.")
    return redirect(reverse("access:delegation-list"))
