from __future__ import annotations

from django import forms

from access.models import ApprovalPolicy, Risk


class AdoptionForm(forms.Form):
    policy = forms.ModelChoiceField(queryset=ApprovalPolicy.objects.order_by("slug"))
    # Checked by the service (0.5 ≤ p ≤ 1), so a bad number is reported by name.
    min_probability = forms.CharField(max_length=12, initial="0.99")
    max_risk = forms.ChoiceField(choices=Risk.choices, initial=Risk.LOW)
    enabled = forms.BooleanField(required=False, initial=True)
