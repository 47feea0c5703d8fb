"""Helpers shared by the access pages."""

from __future__ import annotations

from django.core.paginator import Paginator

from audit.registry import ACTIONS

from .. import selectors

CATALOG_PAGE_SIZE = 25
LIST_PAGE_SIZE = 25
INBOX_PAGE_SIZE = 50
MAX_PICKED = 20
PICKER_RESULTS = 20


# --- Helpers --------------------------------------------------------------------------
def is_htmx_partial(request) -> bool:
    htmx = getattr(request, "htmx", None)
    return htmx is not None and bool(htmx) and not htmx.history_restore_request


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
