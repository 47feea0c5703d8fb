"""Errors tied to their fields, for inputs a template writes by hand.

``<input name="x"{{ form.x|aria_errors }}>`` adds ``aria-invalid="true"`` and
``aria-describedby="<id>_error"`` when the field has errors, and
``{% field_errors form.x %}`` writes the error element with that id (what Django does for
widgets it renders itself, see :mod:`portal.core.forms`).
"""

from __future__ import annotations

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


def error_id(field) -> str:
    return f"{field.auto_id or 'id_' + field.html_name}_error"


@register.filter
def aria_errors(field) -> SafeString:
    if not getattr(field, "errors", None):
        return mark_safe("")  # noqa: S308 - a constant
    return format_html(' aria-invalid="true" aria-describedby="{}"', error_id(field))


@register.simple_tag
def field_errors(field, css: str = "field-errors") -> SafeString:
    """The field's errors in an element whose id the field's ``aria-describedby`` names."""
    if not getattr(field, "errors", None):
        return mark_safe("")  # noqa: S308 - a constant
    items = format_html_join("", "<li>{}</li>", ((e,) for e in field.errors))
    return format_html('<ul class="errorlist {}" id="{}">{}</ul>', css, error_id(field), items)
