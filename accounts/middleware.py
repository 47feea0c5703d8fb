"""A second factor in this session before any administrative power (REQUIRE_MFA_FOR_ADMINS).

Enrolment is not enough: a password-only session of a platform admin, a security member or a
staff account may read, but every change it makes (any unsafe method), the admin site and the
administrative reads (audit export) need a session in which the person passed a second factor
(allauth records it). A page sends to the MFA step (activation if none is enrolled, else
re-authentication with a code); the API answers 403 problem+json. Token-authenticated API calls
carry no session and are not affected here: a powerful person's token can only be created from
an MFA session (tokens.services).
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from allauth.account.authentication import get_authentication_records
from allauth.mfa.models import Authenticator
from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from .policies import holds_powerful_role

ADMIN_PREFIXES = ("/admin/", "/platform/")
#: Reads that are administrative powers in themselves (bulk data leaving the portal).
POWERFUL_READ_PREFIXES = ("/audit/export", "/api/v1/audit/export")
#: allauth's own pages (sign-in, MFA step, sign-out) and the probes are never gated.
EXEMPT_PREFIXES = ("/accounts/", "/healthz", "/readyz", "/static/")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")
PROBLEM_TYPE = "https://tollgate.test/problems/mfa-required"


def user_has_mfa(user) -> bool:
    return Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


def session_passed_mfa(request) -> bool:
    """Whether the signed-in person passed a second factor in this session."""
    records = get_authentication_records(request, request.user)
    return any(record.get("method") == "mfa" for record in records)


def holds_powers(user) -> bool:
    return bool(user.is_staff) or holds_powerful_role(user)


def is_power_request(request) -> bool:
    path = request.path
    if path.startswith(EXEMPT_PREFIXES):
        return False
    return (
        path.startswith(ADMIN_PREFIXES)
        or path.startswith(POWERFUL_READ_PREFIXES)
        or request.method not in SAFE_METHODS
    )


def mfa_step_url(request) -> str:
    step = "mfa_reauthenticate" if user_has_mfa(request.user) else "mfa_activate_totp"
    target = request.get_full_path() if request.method in SAFE_METHODS else "/"
    return f"{reverse(step)}?{urlencode({'next': target})}"


class AdminMFAMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if (
            settings.REQUIRE_MFA_FOR_ADMINS
            and request.user.is_authenticated
            and is_power_request(request)
            and holds_powers(request.user)
            and not session_passed_mfa(request)
        ):
            if request.path.startswith("/api/"):
                body = {
                    "type": PROBLEM_TYPE,
                    "title": "Forbidden",
                    "status": 403,
                    "detail": "this needs a session that passed a second factor; "
                    f"sign in again with your authenticator ({mfa_step_url(request)})",
                    "reason": "mfa_required",
                }
                return HttpResponse(
                    json.dumps(body), status=403, content_type="application/problem+json"
                )
            return redirect(mfa_step_url(request))
        return self.get_response(request)
