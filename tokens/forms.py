from __future__ import annotations

from django import forms

from access.models import Service

from .models import Scope

EXPIRY_CHOICES = [("30", "30 days"), ("90", "90 days"), ("365", "1 year"), ("never", "Never")]


class TokenCreateForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. 'laptop script'.")
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[Scope.READ, Scope.WRITE],
    )
    expires_in = forms.ChoiceField(choices=EXPIRY_CHOICES, initial="90", label="Expires after")


class ServiceTokenCreateForm(forms.Form):
    service = forms.ModelChoiceField(queryset=None, to_field_name="slug")
    name = forms.CharField(max_length=100, help_text="Who calls with it, e.g. 'search-api prod'.")
    scope_all = forms.BooleanField(
        required=False, label="May check every service (check:*), not only its own"
    )
    expires_in = forms.ChoiceField(choices=EXPIRY_CHOICES, initial="365", label="Expires after")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["service"].queryset = Service.objects.order_by("slug")
