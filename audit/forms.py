from django import forms

from .exporting import FORMATS
from .registry import ACTIONS


def _action_choices():
    return [("", "Any action")] + [(name, name) for name in sorted(ACTIONS)]


class AuditSearchForm(forms.Form):
    actor = forms.CharField(required=False, max_length=254, label="Actor e-mail")
    action = forms.ChoiceField(required=False, choices=_action_choices)
    target_type = forms.CharField(required=False, max_length=64)
    target_id = forms.CharField(required=False, max_length=64)
    team = forms.SlugField(required=False, label="Team (slug)")
    since = forms.DateTimeField(required=False, label="From (inclusive)")
    until = forms.DateTimeField(required=False, label="Until (exclusive)")

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since >= until:
            self.add_error("until", "Must be after the start.")
        return data


class AuditExportForm(forms.Form):
    format = forms.ChoiceField(choices=[(f, f.upper()) for f in FORMATS])
    since = forms.DateTimeField(required=False, label="From (inclusive)")
    until = forms.DateTimeField(required=False, label="Until (exclusive)")
