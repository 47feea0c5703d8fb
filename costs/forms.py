"""Input forms (plain forms: only the listed fields can ever be set)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import forms

from accounts.models import Team

from .attribution import RuleSpec
from .models import AttributionRule


def parse_shares(text: str) -> list[tuple[str, str]]:
    """``payments:60`` or ``payments 60`` or ``payments`` per line or comma."""
    out = []
    for chunk in text.replace(",", "\n").splitlines():
        chunk = chunk.strip()
        if not chunk:
            continue
        if ":" in chunk:
            slug, weight = chunk.split(":", 1)
        elif " " in chunk:
            slug, weight = chunk.split(None, 1)
        else:
            slug, weight = chunk, "1"
        out.append((slug.strip(), weight.strip() or "1"))
    return out


class UploadForm(forms.Form):
    source = forms.SlugField(max_length=80)
    period = forms.RegexField(regex=r"^\d{4}-\d{2}$", required=False, help_text="YYYY-MM")
    file = forms.FileField()


class RuleForm(forms.Form):
    name = forms.CharField(max_length=120)
    position = forms.IntegerField(min_value=0, required=False)
    enabled = forms.BooleanField(required=False, initial=True)
    tag_key = forms.CharField(max_length=200, required=False)
    tag_value = forms.CharField(max_length=200, required=False)
    billing_account_id = forms.CharField(max_length=200, required=False)
    sub_account_id = forms.CharField(max_length=200, required=False)
    resource_pattern = forms.CharField(max_length=500, required=False)
    resource_pattern_kind = forms.ChoiceField(choices=AttributionRule.PatternKind.choices)
    service_name = forms.CharField(max_length=200, required=False)
    region = forms.CharField(max_length=100, required=False)
    method = forms.ChoiceField(choices=AttributionRule.Method.choices)
    team = forms.ChoiceField(required=False)
    target_service = forms.SlugField(max_length=120, required=False)
    target_project = forms.CharField(max_length=120, required=False)
    proportional_category = forms.CharField(max_length=100, required=False)
    shares = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="shared rules: one team per line, optionally with a weight (payments:60)",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = [("", "—")] + list(
            Team.objects.order_by("name").values_list("slug", "name")
        )

    @staticmethod
    def initial_for(rule: AttributionRule) -> dict:
        data = {f: getattr(rule, f) for f in RuleForm.base_fields if hasattr(rule, f)}
        data["team"] = rule.team.slug if rule.team_id else ""
        data["shares"] = "\n".join(
            f"{s.team.slug}:{s.weight.normalize()}" for s in rule.shares.all()
        )
        return data

    def rule_data(self) -> tuple[dict, list[tuple[str, str]]]:
        data = {k: v for k, v in self.cleaned_data.items() if k != "shares"}
        if data.get("position") is None:
            data.pop("position")
        return data, parse_shares(self.cleaned_data.get("shares") or "")

    def to_spec(self, rule_id: int | None) -> RuleSpec:
        """The rule as the form describes it, for the preview (nothing is saved)."""
        data, shares = self.rule_data()
        slugs = {slug for slug, _ in shares} | ({data["team"]} if data.get("team") else set())
        ids = dict(Team.objects.filter(slug__in=slugs).values_list("slug", "id"))
        resolved = []
        for slug, weight in shares:
            try:
                w = Decimal(weight)
            except InvalidOperation:
                w = Decimal(0)
            if slug in ids and w.is_finite() and w > 0:
                resolved.append((ids[slug], w))
        return RuleSpec(
            id=rule_id,
            name=data["name"],
            tag_key=data.get("tag_key", ""),
            tag_value=data.get("tag_value", ""),
            billing_account_id=data.get("billing_account_id", ""),
            sub_account_id=data.get("sub_account_id", ""),
            resource_pattern=data.get("resource_pattern", ""),
            resource_pattern_kind=data.get("resource_pattern_kind", "glob"),
            service_name=data.get("service_name", ""),
            region=data.get("region", ""),
            method=data["method"],
            team_id=ids.get(data.get("team") or ""),
            target_service=data.get("target_service", ""),
            target_project=data.get("target_project", ""),
            proportional_category=data.get("proportional_category", ""),
            shares=resolved,
        )
