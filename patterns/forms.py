from __future__ import annotations

from django import forms

from accounts.models import Team


class RunForm(forms.Form):
    scope = forms.ChoiceField(choices=[("team", "Team"), ("service", "Service")])
    team = forms.ModelChoiceField(
        queryset=Team.objects.none(), required=False, to_field_name="slug"
    )
    service = forms.ModelChoiceField(queryset=None, required=False, to_field_name="slug")
    time_limit = forms.IntegerField(min_value=1, max_value=240, initial=10, label="Time limit (s)")

    def __init__(self, *args, teams, services, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = teams
        self.fields["service"].queryset = services

    def clean(self):
        data = super().clean()
        scope = data.get("scope")
        if scope == "team" and not data.get("team"):
            self.add_error("team", "pick the team to mine")
        if scope == "service" and not data.get("service"):
            self.add_error("service", "pick the service to mine")
        return data


class EntitlementsForm(forms.Form):
    entitlements = forms.TypedMultipleChoiceField(
        coerce=int, widget=forms.CheckboxSelectMultiple, required=False
    )
    note = forms.CharField(max_length=500, required=False)

    def __init__(self, *args, choices, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["entitlements"].choices = choices


class AdoptForm(EntitlementsForm):
    team = forms.ModelChoiceField(queryset=Team.objects.order_by("name"), to_field_name="slug")
    name = forms.CharField(max_length=200, required=False)

    field_order = ["team", "name", "entitlements", "note"]


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=300)
