"""The REST API's shared contract: every answer under ``/api/`` that is not a success is an
RFC 9457 ``application/problem+json`` document, list endpoints do bounded work per call,
and callers are throttled per token.

* :func:`problem_exception_handler`: DRF errors (400, 401, 403, 404, 405, 415, 429) and
  domain errors as problem+json;
* :func:`api_not_found`: the catch-all route under ``/api/`` (unknown paths and malformed
  path ids, which Django's resolver would answer with its HTML 404);
* ``portal.core.pagination.BoundedLimitOffsetPagination``: ``limit`` at most 500 (more is a
  400 naming the limit, not a silent clamp), ``offset`` at most 1,000,000;
* ``portal.core.throttling.TokenRateThrottle``: a fixed-window counter per API token (per
  person for a browser session), one cache increment per call, 429 with ``Retry-After``;
* :class:`ProblemAutoSchema`: documents the problem+json answers every operation can give.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import Http404
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView, exception_handler

from .errors import DomainError
from .throttling import TokenRateThrottle

PROBLEM_BASE = "https://tollgate.test/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"


def problem(status: int, code: str, title: str, detail=None, **extra) -> Response:
    body = {"type": PROBLEM_BASE + code, "title": title, "status": status}
    if detail is not None:
        body["detail"] = detail
    body.update(extra)
    return Response(body, status=status, content_type=PROBLEM_MEDIA_TYPE)


def problem_exception_handler(exc, context):
    if isinstance(exc, DomainError):
        # The status comes from the reason code (a table per app), never from the message.
        extra = {"field": exc.field} if exc.field else {}
        if exc.reason_code:
            extra["reason"] = exc.reason_code
        return problem(exc.http_status, exc.code, exc.__class__.__name__, exc.message, **extra)
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = drf_exceptions.PermissionDenied()
    elif isinstance(exc, SuspiciousOperation):
        # e.g. a body over DATA_UPLOAD_MAX_MEMORY_SIZE: Django would answer its HTML 400.
        exc = drf_exceptions.ParseError(str(exc) or "The request could not be read.")
    response = exception_handler(exc, context)
    if response is None:
        return None
    code = getattr(exc, "default_code", "error").replace("_", "-")
    data = response.data
    if isinstance(data, dict) and set(data) == {"detail"}:
        detail, errors = str(data["detail"]), None
    else:
        detail, errors = "The request is invalid.", data
    body = {
        "type": PROBLEM_BASE + code,
        "title": response.status_text,
        "status": response.status_code,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
        if isinstance(errors, dict) and errors:
            body["field"] = str(next(iter(errors)))
    response.data = body
    response.content_type = PROBLEM_MEDIA_TYPE
    return response


class ApiNotFoundView(APIView):
    """Anything under /api/ that no route matches: an unknown path, a malformed path id
    (``/api/v1/requests/abc``) or a missing trailing slash, whatever the method. The caller
    is authenticated first (a bad token is 401, as on every other API path), then 404."""

    permission_classes = [IsAuthenticated]
    schema = None  # not an operation

    def _not_found(self, request, *args, **kwargs):
        raise drf_exceptions.NotFound(
            f"no API operation at {request.path!r}: ids in a path are positive integers, "
            "slugs are letters, digits, '-' and '_', and list paths end in '/' "
            "(the operations are listed at /api/v1/schema)"
        )

    get = post = put = patch = delete = head = options = _not_found


api_not_found = ApiNotFoundView.as_view()


# --- schema ----------------------------------------------------------------------------


class Problem(serializers.Serializer):
    """RFC 9457 problem details (``application/problem+json``)."""

    type = serializers.URLField(help_text="a stable URI naming the kind of problem")
    title = serializers.CharField()
    status = serializers.IntegerField(help_text="the HTTP status code")
    detail = serializers.CharField(required=False, help_text="what went wrong, for a person")
    field = serializers.CharField(
        required=False, help_text="the input field at fault, when there is one"
    )
    reason = serializers.CharField(
        required=False, help_text="a stable refusal code, when the refusal has one"
    )
    # A declared field, not the Serializer.errors property (the metaclass takes it aside).
    errors = serializers.JSONField(  # type: ignore[assignment]
        required=False, help_text="the messages per input field, for invalid input"
    )


PROBLEM_TEXT = {
    400: "Invalid input; `field` names the field at fault",
    401: "Not authenticated (no session, or a missing, revoked or expired token)",
    403: "Authenticated but not allowed (the token's scopes, the caller's role, or a "
    "session without a second factor for a power action)",
    404: "Not found, or not visible to the caller",
    409: "Conflict with the current state (e.g. no longer pending, already open)",
    429: "Too many calls: wait for the seconds in `Retry-After`",
}


def problem_responses(*codes: int) -> dict:
    """``extend_schema(responses=...)`` entries for problem+json answers."""
    return {
        (code, PROBLEM_MEDIA_TYPE): OpenApiResponse(Problem, description=PROBLEM_TEXT[code])
        for code in sorted(codes)
    }


class ProblemAutoSchema(AutoSchema):
    """Adds to every operation the problem+json answers it can give, so that the committed
    schema lists every status: 401 and 403 always; 400 when it takes a body or query
    parameters; 404 when its path has a parameter; 429 when the view is throttled.
    An operation's own ``extend_schema(responses=...)`` entries (409, descriptions) win.
    An input serializer with ``refuses_unknown_fields`` is an object without additional
    properties."""

    def _problem_statuses(self) -> set[int]:
        statuses = {401, 403}
        if self.method in ("POST", "PUT", "PATCH") or any(
            p.get("in") == "query" for p in self._get_parameters()
        ):
            statuses.add(400)
        if "{" in self.path:
            statuses.add(404)
        if any(isinstance(t, TokenRateThrottle) for t in self.view.get_throttles()):
            statuses.add(429)
        return statuses

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for code in sorted(self._problem_statuses() - {int(c) for c in responses}):
            response = self._get_response_for_code(
                OpenApiResponse(Problem, description=PROBLEM_TEXT[code]),
                str(code),
                [PROBLEM_MEDIA_TYPE],
                direction,
            )
            responses[str(code)] = response
        return dict(sorted(responses.items()))

    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        if getattr(serializer, "refuses_unknown_fields", False):
            schema["additionalProperties"] = False  # the server answers 400 naming them
        return schema

    def _get_response_headers_for_code(self, status_code, direction="response"):
        headers = super()._get_response_headers_for_code(status_code, direction)
        if str(status_code) == "429":
            headers["Retry-After"] = {
                "schema": {"type": "integer", "minimum": 1},
                "description": "seconds until the caller's window reopens",
            }
        return headers
