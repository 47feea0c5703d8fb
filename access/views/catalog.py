"""A1 catalog pages: services and entitlements."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.selectors import team_members
from portal.core.errors import Conflict, DomainError, NotPermitted, ValidationError
from portal.core.managed import MANAGED_ELSEWHERE, managed_note
from portal.core.views import add_form_error, domain_errors

from .. import policies, selectors, services
from ..forms import (
    CatalogFilterForm,
    EntitlementForm,
    ServiceForm,
)
from ._common import (
    CATALOG_PAGE_SIZE,
    is_htmx_partial,
    paginate,
    querystring_without_page,
)


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
    connector = None
    if policies.may_see_holders(request.user, service):
        holders = selectors.service_holders(service=service)
        connector = _connector_status(service)
    return render(
        request,
        "access/service_detail.html",
        {
            "service": service,
            "entitlements": entitlements,
            "owners": team_members(team=service.owner_team),
            "holders": holders,
            "connector": connector,
            "may_edit": policies.may_edit_service(request.user, service),
            "managed_note": managed_note(service),
        },
    )


def _connector_status(service) -> dict | None:
    """Connector, cached downstream health (no network here) and last reconciliation."""
    from ..sync import health
    from ..sync import selectors as sync_selectors

    if not service.connector:
        return None
    return {
        "name": service.connector,
        "health": health.cached_health(service),
        "last_run": sync_selectors.last_run(service=service),
    }


@require_GET
@login_required
def service_connector_health(request, slug: str):
    """The health badge (HTMX): the cached answer, or a probe limited to a few seconds when
    there is none or ``?refresh=1``. Owners and those who see all access only (404 otherwise)."""
    from ..sync import health

    service = selectors.service_get(viewer=request.user, slug=slug)
    if not policies.may_see_holders(request.user, service) or not service.connector:
        raise Http404("no such page")
    probed = None if request.GET.get("refresh") else health.cached_health(service)
    if probed is None:
        probed = health.probe_health(service)
    return render(
        request,
        "access/partials/_connector_health.html",
        {"service": service, "health": probed, "probed": True},
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
        except NotPermitted as exc:
            if exc.reason_code != MANAGED_ELSEWHERE:
                raise
            add_form_error(form, exc)  # managed in the configuration repository: say where
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
            proposals = services.entitlement_update_or_propose(
                actor=request.user, entitlement=ent, **form.values()
            )
        except (ValidationError, Conflict) as exc:
            add_form_error(form, exc)
        except NotPermitted as exc:
            if exc.reason_code != MANAGED_ELSEWHERE:
                raise
            add_form_error(form, exc)  # managed in the configuration repository: say where
        else:
            messages.success(request, f"Entitlement {ent.name} saved.")
            for proposal in proposals:
                messages.info(
                    request,
                    f"The change of {proposal.get_field_display().lower()} waits for a platform "
                    "admin or a security member (an owner may not weaken their own controls).",
                )
            return redirect("access:service-detail", slug=service.slug)
    return render(
        request,
        "access/entitlement_form.html",
        {
            "form": form,
            "service": service,
            "entitlement": ent,
            "proposals": selectors.entitlement_change_proposals(entitlement=ent),
        },
    )


@require_GET
@login_required
def catalog_changes(request):
    """Proposed changes of entitlements' controls, for platform admins and security."""
    if not policies.may_change_controls(request.user):
        raise Http404("no such page")
    return render(
        request,
        "access/catalog_change_list.html",
        {"proposals": selectors.catalog_change_proposals(viewer=request.user)},
    )


@require_POST
@login_required
@domain_errors
def catalog_change_decide(request, pk: int, decision: str):
    if not policies.may_change_controls(request.user):
        raise Http404("no such page")
    note = request.POST.get("note", "")
    try:
        if decision == "apply":
            services.catalog_change_apply(actor=request.user, proposal_id=pk, note=note)
        else:
            services.catalog_change_reject(actor=request.user, proposal_id=pk, note=note)
    except DomainError as exc:
        messages.error(request, f"Proposal #{pk}: {exc.message}.")
    else:
        verb = "applied" if decision == "apply" else "rejected"
        messages.success(request, f"Proposal #{pk} {verb}.")
    return redirect("access:catalog-changes")


# --- A2 Request form ------------------------------------------------------------------
