from django import template
from django.urls import reverse

register = template.Library()


@register.simple_tag
def audit_history_url(obj) -> str:
    """The audit history URL of a model instance, for "History" links on object pages."""
    return reverse("audit:history", args=[obj._meta.label_lower, str(obj.pk)])
