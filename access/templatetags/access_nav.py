"""Navigation helpers for base.html: how many approvals wait on the signed-in person."""

from django import template

register = template.Library()


@register.simple_tag(takes_context=True)
def approvals_waiting(context) -> int:
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return 0
    cached = getattr(request, "_tollgate_approvals_waiting", None)
    if cached is None:
        from access.selectors import approval_inbox_count

        cached = approval_inbox_count(viewer=user)
        request._tollgate_approvals_waiting = cached
    return cached
