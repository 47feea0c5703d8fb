"""A5 grant pages and delegations."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from portal.core.errors import Conflict, ValidationError
from portal.core.views import add_form_error, domain_errors

from .. import policies, selectors, services
from ..forms import (
    DelegationForm,
    RevokeForm,
)
from ..models import Grant
from ._common import (
    LIST_PAGE_SIZE,
    _timeline,
    paginate,
    querystring_without_page,
)


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
