"""RFC 9457 problem+json errors for the REST API."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler

from .errors import DomainError

PROBLEM_BASE = "https://tollgate.test/problems/"


def problem(status: int, code: str, title: str, detail=None, **extra) -> Response:
    body = {"type": PROBLEM_BASE + code, "title": title, "status": status}
    if detail is not None:
        body["detail"] = detail
    body.update(extra)
    return Response(body, status=status, content_type="application/problem+json")


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
    response.data = body
    response.content_type = "application/problem+json"
    return response
