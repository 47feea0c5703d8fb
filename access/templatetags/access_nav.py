"""Navigation helpers for base.html: how many approvals wait on the signed-in person."""

import logging

from django import template
from django.db import DatabaseError

register = template.Library()
logger = logging.getLogger(__name__)


@register.simple_tag(takes_context=True)
def approvals_waiting(context) -> int:
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return 0
    cached = getattr(request, "_tollgate_approvals_waiting", None)
    if cached is None:
        from access.selectors import approval_inbox_count

        try:
            cached = approval_inbox_count(viewer=user)
        except DatabaseError:
            # base.html also frames the 500 page: a database outage must not break it too.
            logger.warning("approvals count unavailable", exc_info=True)
            return 0
        request._tollgate_approvals_waiting = cached
    return cached
