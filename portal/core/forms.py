"""How forms render their errors, everywhere (``FORM_RENDERER``).

Django (5.2) already marks a widget with errors ``aria-invalid="true"`` and points its
``aria-describedby`` at ``<id>_error``, the id its error list carries. This renderer adds the
one thing left: the errors of the form as a whole (``non_field_errors``) are a
``role="alert"`` region, so a screen reader announces them when the page comes back.
Hand-written inputs (the request form) use :func:`portal.core.templatetags.form_a11y`.
"""

from __future__ import annotations

from pathlib import Path

import django.forms
from django.forms.renderers import DjangoTemplates
from django.utils.functional import cached_property

OVERRIDES = Path(__file__).with_name("form_templates")


class FormRenderer(DjangoTemplates):
    """Django's form templates, with the overrides in ``portal/core/form_templates`` first."""

    @cached_property
    def engine(self):
        return self.backend(
            {
                "APP_DIRS": True,
                "DIRS": [OVERRIDES, Path(django.forms.__file__).parent / "templates"],
                "NAME": "tollgate-forms",
                "OPTIONS": {},
            }
        )
