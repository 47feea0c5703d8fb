"""API token pages: list mine, create (the secret is shown once), revoke."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accounts.middleware import session_passed_mfa
from portal.core.errors import Conflict, DomainError, NotFound
from portal.core.views import add_form_error

from . import selectors, services
from .forms import ServiceTokenCreateForm, TokenCreateForm
from .policies import may_manage_service_tokens


def _render_list(request, form, *, created=None, plaintext=None, status=200, service_form=None):
    manages = may_manage_service_tokens(request.user)
    return render(
        request,
        "tokens/token_list.html",
        {
            "tokens": selectors.my_api_tokens(viewer=request.user),
            "form": form,
            "created": created,
            "plaintext": plaintext,
            "now": timezone.now(),
            "may_manage_service_tokens": manages,
            "service_tokens": selectors.service_tokens(viewer=request.user) if manages else [],
            "service_form": (service_form or ServiceTokenCreateForm()) if manages else None,
        },
        status=status,
    )


@require_GET
@login_required
def token_list(request):
    return _render_list(request, TokenCreateForm())


@never_cache
@require_POST
@login_required
def token_create(request):
    form = TokenCreateForm(request.POST)
    if not form.is_valid():
        return _render_list(request, form, status=400)
    expires = form.cleaned_data["expires_in"]
    expires_at = None if expires == "never" else timezone.now() + timedelta(days=int(expires))
    try:
        token, plaintext = services.api_token_create(
            actor=request.user,
            user=request.user,
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            expires_at=expires_at,
            mfa_session=session_passed_mfa(request),
        )
    except DomainError as exc:
        add_form_error(form, exc)
        return _render_list(request, form, status=400)
    # Rendered, not redirected: the secret must never be stored (session, messages, logs).
    return _render_list(request, TokenCreateForm(), created=token, plaintext=plaintext)


@never_cache
@require_POST
@login_required
def service_token_create(request):
    if not may_manage_service_tokens(request.user):
        raise PermissionDenied("only platform admins create service tokens")
    form = ServiceTokenCreateForm(request.POST)
    if not form.is_valid():
        return _render_list(request, TokenCreateForm(), service_form=form, status=400)
    expires = form.cleaned_data["expires_in"]
    expires_at = None if expires == "never" else timezone.now() + timedelta(days=int(expires))
    try:
        token, plaintext = services.service_token_create(
            actor=request.user,
            service=form.cleaned_data["service"],
            name=form.cleaned_data["name"],
            scope_all=form.cleaned_data["scope_all"],
            expires_at=expires_at,
        )
    except DomainError as exc:
        add_form_error(form, exc)
        return _render_list(request, TokenCreateForm(), service_form=form, status=400)
    return _render_list(request, TokenCreateForm(), created=token, plaintext=plaintext)


@require_POST
@login_required
def token_revoke(request, pk: int):
    try:
        token = services.api_token_revoke(actor=request.user, token_id=pk)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except Conflict as exc:
        messages.info(request, exc.message)
        return redirect("tokens:list")
    messages.success(request, f"Token “{token.name}” ({token.prefix}…) revoked.")
    return redirect("tokens:list")
