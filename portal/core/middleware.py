from __future__ import annotations

import re

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse

from . import context

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestContextMiddleware:
    """Bind a request id (incoming ``X-Request-ID`` if well-formed), IP and user agent."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _REQUEST_ID_RE.match(incoming) else context.new_request_id()
        ip = request.META.get("REMOTE_ADDR")
        user_agent = request.headers.get("User-Agent", "")[:512]
        with context.bind(request_id=request_id, ip=ip, user_agent=user_agent):
            request.request_id = request_id  # type: ignore[attr-defined]  # ours, for views
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


class RequestUserContextMiddleware:
    """Placeholder hook point after authentication (kept for ordering clarity)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)


# Paths any anonymous visitor may reach. Everything else requires sign-in (deny by default).
# Exact paths, and prefixes (ending in "/") whose views protect themselves: allauth's
# sign-in flow is public, its account pages require a session of their own.
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/favicon.ico"})
PUBLIC_PATH_PREFIXES = ("/accounts/", "/static/")


# Paths whose views authenticate every request themselves with a bearer token and never with
# the session (SCIM: a SCIM client's token only; anything else answers 401 in SCIM's format).
# Slack's callbacks: signed by Slack (integrations.slack.signature), never a session.
SELF_AUTHENTICATED_PREFIXES = (
    "/scim/v2/",
    "/integrations/slack/interactions",
    "/integrations/slack/commands",
)


def is_public_path(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PATH_PREFIXES)


class LoginRequiredByDefaultMiddleware:
    """Deny by default: an anonymous request to a non-public path is sent to sign-in.

    API paths answer 401 problem+json instead of a redirect (the API views also
    authenticate on their own; this is the second belt).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Public paths first: probes must not load the session or the user (no database).
        # Then API calls carrying a token, which DRF authenticates (and refuses) itself;
        # this middleware would let them through whoever the session says, so it does not
        # load the session for them (the check API's hot path).
        path = request.path
        if (
            is_public_path(path)
            or path.startswith(SELF_AUTHENTICATED_PREFIXES)
            or (path.startswith("/api/") and request.META.get("HTTP_AUTHORIZATION"))
        ):
            return self.get_response(request)
        if request.user.is_authenticated:
            return self.get_response(request)
        if path.startswith("/api/"):
            return JsonResponse(
                {
                    "type": "https://tollgate.test/problems/not-authenticated",
                    "title": "Authentication required",
                    "status": 401,
                    "detail": "Sign in or send an API token.",
                },
                status=401,
                content_type="application/problem+json",
                headers={"WWW-Authenticate": 'Bearer realm="tollgate"'},
            )
        return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
