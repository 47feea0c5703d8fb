from django import template

from audit.policies import may_read_audit

register = template.Library()


@register.simple_tag(takes_context=True)
def may_read_audit_trail(context) -> bool:
    """Only hides the nav link; the views check the policy themselves."""
    request = context.get("request")
    return bool(request) and may_read_audit(request.user)


@register.simple_tag
def audit_history_url(obj) -> str:
    """The audit history URL of a model instance, for "History" links on object pages."""
    from django.urls import reverse

    return reverse("audit:history", args=[obj._meta.label_lower, str(obj.pk)])
