"""HTML forms of the access pages. They parse and validate input only; the services write.

Plain forms (not ModelForms): each view hands the cleaned values, named one by one, to a
service, so a field a person may not set cannot be set (no mass assignment).
"""

from __future__ import annotations

from django import forms

from accounts.models import Team, User

from .models import ApprovalPolicy, Entitlement, Risk

# Service errors name fields by their service argument; the forms name them the same way,
# except the request form's picker, which the services also call "entitlements".
REQUEST_FIELD_ALIASES = {"entitlements": "entitlement"}


class CatalogFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=100, label="Search")
    team = forms.ChoiceField(required=False, label="Owner team")
    tier = forms.ChoiceField(
        required=False,
        choices=[("", "Any tier")] + [(str(t), f"Tier {t}") for t in range(4)],
    )
    risk = forms.ChoiceField(required=False, choices=[("", "Any risk"), *Risk.choices])

    def __init__(self, *args, teams=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = [("", "Any team")] + [(t.slug, t.name) for t in teams]

    def filters(self) -> dict[str, str]:
        if not self.is_valid():
            return {"q": "", "team": "", "tier": "", "risk": ""}
        return {k: self.cleaned_data.get(k) or "" for k in ("q", "team", "tier", "risk")}


class ServiceForm(forms.Form):
    slug = forms.SlugField(max_length=80)
    name = forms.CharField(max_length=200)
    owner_team = forms.ModelChoiceField(
        queryset=Team.objects.order_by("name"), to_field_name="slug"
    )
    tier = forms.TypedChoiceField(
        choices=[(t, f"Tier {t}") for t in range(4)], coerce=int, initial=2
    )
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), required=False)
    docs_url = forms.URLField(required=False, label="Docs link", assume_scheme="https")

    def __init__(self, *args, editing: bool = False, may_move: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if editing:
            del self.fields["slug"]
        if not may_move:
            del self.fields["owner_team"]


class EntitlementForm(forms.Form):
    slug = forms.SlugField(max_length=80)
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    risk = forms.ChoiceField(choices=Risk.choices)
    requestable = forms.BooleanField(required=False, initial=True)
    default_duration_days = forms.IntegerField(min_value=1, initial=30)
    max_duration_days = forms.IntegerField(min_value=1, initial=90)
    seat_cost_monthly = forms.DecimalField(
        min_value=0, max_digits=12, decimal_places=2, initial=0, label="Seat cost per month"
    )
    policy = forms.ModelChoiceField(
        queryset=ApprovalPolicy.objects.order_by("name"),
        required=False,
        empty_label="The default policy",
        label="Approval policy",
    )
    allows_break_glass = forms.BooleanField(required=False, label="Allows break-glass access")

    SERVICE_FIELDS = (
        "name",
        "description",
        "risk",
        "requestable",
        "default_duration_days",
        "max_duration_days",
        "seat_cost_monthly",
        "policy",
        "allows_break_glass",
    )

    def __init__(self, *args, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if editing:
            del self.fields["slug"]

    def values(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.SERVICE_FIELDS}


class AccessRequestForm(forms.Form):
    # "entitlement", repeated: the catalog links here with ?entitlement=<id>&entitlement=<id>.
    entitlement = forms.ModelMultipleChoiceField(
        queryset=Entitlement.objects.select_related("service"),
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "pick at least one entitlement"},
        label="Entitlements",
    )
    principal = forms.ModelChoiceField(
        queryset=User.objects.none(), label="For", empty_label=None, required=False
    )
    duration_days = forms.IntegerField(min_value=1, label="Duration (days)")
    justification = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        label="Why do you need it?",
    )

    def __init__(self, *args, principals=(), **kwargs):
        super().__init__(*args, **kwargs)
        ids = [p.pk for p in principals]
        self.default_principal = principals[0] if principals else None
        self.fields["principal"].queryset = User.objects.filter(pk__in=ids).order_by("name")

    def clean(self):
        data = super().clean()
        if not data.get("principal") and "principal" not in self.errors:
            data["principal"] = self.default_principal  # for yourself, unless you pick a report
        picked = data.get("entitlement")
        days = data.get("duration_days")
        if picked and days is not None:
            limit = min(e.max_duration_days for e in picked)
            if days > limit:
                self.add_error(
                    "duration_days", f"at most {limit} days for the entitlements you picked"
                )
        return data


class DecisionForm(forms.Form):
    reason = forms.CharField(
        required=False, max_length=2000, widget=forms.TextInput(attrs={"placeholder": "Reason"})
    )


class BulkDecisionForm(forms.Form):
    ids = forms.TypedMultipleChoiceField(coerce=int, choices=(), required=True)
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("deny", "Deny")])
    reason = forms.CharField(required=False, max_length=2000)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        raw = self.data.getlist("ids") if hasattr(self.data, "getlist") else []
        self.fields["ids"].choices = [(v, v) for v in raw if str(v).isdigit()]
        self.fields["ids"].error_messages["required"] = "tick at least one request"


class RevokeForm(forms.Form):
    reason = forms.CharField(max_length=300, widget=forms.TextInput(attrs={"placeholder": "Why"}))


class DelegationForm(forms.Form):
    delegate = forms.EmailField(label="Delegate's e-mail")
    starts_on = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}))
    ends_on = forms.DateField(label="To", widget=forms.DateInput(attrs={"type": "date"}))
    reason = forms.CharField(max_length=300, required=False)

    def clean_delegate(self):
        email = self.cleaned_data["delegate"].strip().lower()
        user = User.objects.filter(email__iexact=email, is_active=True).first()
        if user is None:
            raise forms.ValidationError("nobody active has that e-mail")
        return user
