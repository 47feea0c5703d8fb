import functools

from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.shortcuts import render

from .api import PROBLEM_BASE
from .errors import DomainError, NotFound, NotPermitted


def domain_errors(view):
    """View decorator: NotPermitted → 403 page, NotFound → 404 page; other domain errors
    are the view's to turn into form errors or messages."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except NotPermitted as exc:
            raise PermissionDenied(exc.message) from exc
        except NotFound as exc:
            raise Http404(exc.message) from exc

    return wrapper


def add_form_error(form, exc: DomainError, aliases: dict[str, str] | None = None) -> None:
    """Show a domain error on the form field it names (after ``aliases``), else on the form."""
    field = (aliases or {}).get(exc.field, exc.field) if exc.field else None
    form.add_error(field if field in form.fields else None, exc.message)


def error_403(request, exception=None):
    return render(request, "errors/403.html", status=403)


def error_404(request, exception=None):
    return render(request, "errors/404.html", status=404)


def error_500(request):
    """The server failed: a page, or problem+json under ``/api/`` (no exception text either way;
    the request id in the logs ties the two together)."""
    if request.path.startswith("/api/"):
        body = {
            "type": PROBLEM_BASE + "server-error",
            "title": "Internal Server Error",
            "status": 500,
            "detail": "the server failed to answer; the error is logged with this request's id",
        }
        return JsonResponse(body, status=500, content_type="application/problem+json")
    return render(request, "errors/500.html", status=500)
