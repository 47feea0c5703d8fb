"""REST API of cost analytics (read-only): a team's monthly summary and suggestions,
scoped like the pages (another team's slug answers 404). Money travels as strings."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.core.api import problem_responses
from portal.core.errors import DomainError

from .analytics import selectors
from .analytics.models import Suggestion
from .api import MONTH_PATTERN


def _money(**extra):
    return serializers.DecimalField(max_digits=30, decimal_places=2, coerce_to_string=True, **extra)


class CostSummaryOutput(serializers.Serializer):
    team = serializers.CharField(source="team.slug")
    month = serializers.DateField(format="%Y-%m")
    currency = serializers.CharField()
    billed_cost = _money()
    effective_cost = _money()
    forecast = _money()
    budget = _money(allow_null=True)
    # the org's unallocated cost: present only for the org-wide roles
    unallocated = _money(required=False)


class SuggestionOutput(serializers.ModelSerializer):
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    estimated_monthly_saving = _money()
    realised_monthly_saving = _money(allow_null=True)
    baseline_monthly_cost = _money()

    class Meta:
        model = Suggestion
        fields = (
            "id",
            "kind",
            "team",
            "resource_id",
            "title",
            "estimated_monthly_saving",
            "savings_method",
            "confidence",
            "evidence",
            "baseline_monthly_cost",
            "realised_monthly_saving",
            "status",
            "dismiss_reason",
            "first_seen_at",
            "last_seen_at",
        )
        read_only_fields = fields


class TeamCostSummaryApi(APIView):
    """A team's billed and effective cost of a month, its forecast, budget, and (for the
    org-wide roles only: platform admins, security, auditors, finance) the org's unallocated
    cost of that month (money as strings)."""

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "month",
                str,
                required=False,
                pattern=MONTH_PATTERN,
                description="YYYY-MM (default: this month)",
            )
        ],
        responses=CostSummaryOutput,
    )
    def get(self, request, slug: str):
        try:
            month = selectors.parse_month(
                request.query_params.get("month"), default=selectors.data_as_of()
            )
            summary = selectors.team_month_summary(viewer=request.user, slug=slug, month=month)
        except DomainError as exc:
            raise DRFValidationError({exc.field or "month": [exc.message]}) from None
        return Response(CostSummaryOutput(summary).data)


class SuggestionListApi(ListAPIView):
    """Optimisation suggestions the caller may see, largest saving first."""

    serializer_class = SuggestionOutput

    @extend_schema(
        parameters=[
            OpenApiParameter("team", str, required=False, description="team slug"),
            OpenApiParameter("status", str, required=False, enum=list(Suggestion.Status.values)),
            OpenApiParameter("kind", str, required=False, enum=list(Suggestion.Kind.values)),
        ],
        responses={200: SuggestionOutput(many=True), **problem_responses(404)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        params = self.request.query_params
        for name, choices in (
            ("status", Suggestion.Status.values),
            ("kind", Suggestion.Kind.values),
        ):
            if name in params and params[name] not in choices:  # "?kind=" too: not "any kind"
                raise DRFValidationError({name: [f"expected one of: {', '.join(choices)}"]})
        try:
            return selectors.suggestions_for_viewer(
                viewer=self.request.user,
                team_slug=params.get("team") or None,
                status=params.get("status") or None,
                kind=params.get("kind") or None,
            )
        except DomainError as exc:
            raise DRFValidationError({exc.field or "status": [exc.message]}) from None
