"""The SCIM page (platform admins): clients (token shown once, rotate, revoke) and the
changes held for confirmation (confirm applies, discard drops)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from portal.core.errors import Conflict, DomainError, NotFound

from . import selectors, services
from .policies import may_manage_scim


def _page(request, *, created=None, plaintext=None, error: str = "", status: int = 200):
    if not may_manage_scim(request.user):
        raise Http404("no such page")
    return render(
        request,
        "scim/client_list.html",
        {
            "clients": selectors.clients(viewer=request.user),
            "held": selectors.held_changes(viewer=request.user),
            "decided": selectors.held_changes(viewer=request.user, pending_only=False),
            "created": created,
            "plaintext": plaintext,
            "error": error,
            "scim_base": request.build_absolute_uri("/scim/v2"),
        },
        status=status,
    )


@require_GET
@login_required
def client_list(request):
    return _page(request)


@never_cache
@require_POST
@login_required
def client_create(request):
    if not may_manage_scim(request.user):
        raise Http404("no such page")
    try:
        client, plaintext = services.scim_client_create(
            actor=request.user, name=request.POST.get("name", "")
        )
    except DomainError as exc:
        return _page(request, error=exc.message, status=400)
    # Rendered, not redirected: the secret must never be stored (session, messages, logs).
    return _page(request, created=client, plaintext=plaintext)


@never_cache
@require_POST
@login_required
def client_rotate(request, pk: int):
    try:
        client, plaintext = services.scim_client_rotate(actor=request.user, client_id=pk)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except Conflict as exc:
        return _page(request, error=exc.message, status=409)
    return _page(request, created=client, plaintext=plaintext)


@require_POST
@login_required
def client_revoke(request, pk: int):
    try:
        client = services.scim_client_revoke(actor=request.user, client_id=pk)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except Conflict as exc:
        messages.info(request, exc.message)
        return redirect("scim:clients")
    messages.success(request, f"SCIM client “{client.name}” revoked.")
    return redirect("scim:clients")


@require_POST
@login_required
def held_confirm(request, pk: int):
    try:
        held = services.held_change_confirm(actor=request.user, held_id=pk)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("scim:clients")
    messages.success(request, f"Applied: {held.operation} ({held.email}).")
    return redirect("scim:clients")


@require_POST
@login_required
def held_discard(request, pk: int):
    try:
        held = services.held_change_discard(actor=request.user, held_id=pk)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("scim:clients")
    messages.success(request, f"Discarded: {held.operation} ({held.email}).")
    return redirect("scim:clients")
