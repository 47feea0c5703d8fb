from __future__ import annotations

from django import forms

from access.models import Risk, Service
from accounts.models import Team

from .models import Campaign


class CampaignForm(forms.Form):
    name = forms.CharField(max_length=200)
    scope = forms.ChoiceField(choices=Campaign.Scope.choices)
    scope_service = forms.ModelChoiceField(
        queryset=Service.objects.order_by("name"), required=False, label="Service"
    )
    scope_team = forms.ModelChoiceField(
        queryset=Team.objects.order_by("name"), required=False, label="Team"
    )
    scope_risk = forms.ChoiceField(
        choices=[("", "—"), *Risk.choices], required=False, label="Risk level"
    )
    reviewer_rule = forms.ChoiceField(choices=Campaign.Reviewer.choices, label="Reviewer")
    starts_at = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    deadline = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    deadline_action = forms.ChoiceField(
        choices=Campaign.DeadlineAction.choices, label="At the deadline"
    )


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("keep", "Keep"), ("revoke", "Revoke")])
    reason = forms.CharField(max_length=300, required=False)
    items = forms.TypedMultipleChoiceField(coerce=int, required=False, choices=())

    def __init__(self, *args, item_ids=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["items"].choices = [(pk, pk) for pk in item_ids]
