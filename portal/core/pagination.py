"""Bounded lists for the REST API: ``limit`` at most :data:`MAX_LIMIT` (more is a 400 naming
``limit``, not a silent clamp), ``offset`` at most :data:`MAX_OFFSET`.

Its own module (not portal.core.api) because DRF imports the pagination class named in
settings while its views module loads.
"""

from __future__ import annotations

from rest_framework.pagination import LimitOffsetPagination
from rest_framework.settings import api_settings

from .errors import ValidationError

MAX_LIMIT = 500
MAX_OFFSET = 1_000_000


def _bounded_int(params, name: str, *, minimum: int, maximum: int, default: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9 or not minimum <= int(raw) <= maximum:
        raise ValidationError(
            f"{name} must be a whole number from {minimum} to {maximum} (got {raw[:20]!r})",
            field=name,
        )
    return int(raw)


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    """``?limit=&offset=`` with bounds: a ``limit`` over :data:`MAX_LIMIT` (or not a whole
    number) is refused with 400 naming ``limit`` rather than clamped, so a caller never
    mistakes a short page for the end of the list."""

    max_limit = MAX_LIMIT

    def get_limit(self, request) -> int:
        return _bounded_int(
            request.query_params,
            self.limit_query_param,
            minimum=1,
            maximum=MAX_LIMIT,
            default=int(self.default_limit or api_settings.PAGE_SIZE or MAX_LIMIT),
        )

    def get_offset(self, request) -> int:
        return _bounded_int(
            request.query_params, self.offset_query_param, minimum=0, maximum=MAX_OFFSET, default=0
        )

    def get_schema_operation_parameters(self, view):
        limit, offset = super().get_schema_operation_parameters(view)
        limit["description"] = (
            f"Number of results to return per page: 1 to {MAX_LIMIT} "
            f"(default {self.default_limit or api_settings.PAGE_SIZE}); more is refused with "
            "400 naming `limit`."
        )
        limit["schema"] = {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}
        offset["description"] = (
            f"The initial index from which to return the results (0 to {MAX_OFFSET})."
        )
        offset["schema"] = {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET}
        return [limit, offset]
