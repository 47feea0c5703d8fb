"""REST API of business metrics and unit costs: define a team's metric, push its daily values
(``POST /api/v1/metrics/{slug}/values``), read them with the cost per unit."""

from __future__ import annotations

import datetime as dt

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.core.api import problem_responses

from .analytics import selectors, unit_costs
from .analytics.models import BusinessMetric
from .policies import cost_team_ids_for


class MetricOutput(serializers.ModelSerializer):
    team = serializers.CharField(source="team.slug", read_only=True)

    class Meta:
        model = BusinessMetric
        fields = ("slug", "team", "name", "unit", "created_at")
        read_only_fields = fields


class MetricInput(serializers.Serializer):
    team = serializers.CharField(max_length=120)
    slug = serializers.CharField(max_length=80)
    name = serializers.CharField(max_length=120)
    unit = serializers.CharField(max_length=40)


class MetricValueInput(serializers.Serializer):
    day = serializers.DateField()
    value = serializers.DecimalField(max_digits=24, decimal_places=6, min_value=0)


class MetricValuesInput(serializers.Serializer):
    values = MetricValueInput(many=True, allow_empty=False)


class UnitCostPointOutput(serializers.Serializer):
    day = serializers.DateField()
    cost = serializers.DecimalField(max_digits=30, decimal_places=2, coerce_to_string=True)
    value = serializers.DecimalField(
        max_digits=24, decimal_places=6, coerce_to_string=True, allow_null=True
    )
    unit_cost = serializers.DecimalField(
        max_digits=30, decimal_places=6, coerce_to_string=True, allow_null=True
    )


class UnitCostOutput(serializers.Serializer):
    metric = MetricOutput()
    series = UnitCostPointOutput(many=True)


class MetricListApi(APIView):
    """The metrics of the teams whose costs the caller may see; POST defines one."""

    @extend_schema(responses={200: MetricOutput(many=True)})
    def get(self, request):
        qs = BusinessMetric.objects.select_related("team").order_by("slug")
        ids = cost_team_ids_for(request.user)
        if ids is not None:
            qs = qs.filter(team_id__in=ids)
        return Response(MetricOutput(qs, many=True).data)

    @extend_schema(request=MetricInput, responses={201: MetricOutput, **problem_responses(403)})
    def post(self, request):
        data = MetricInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        metric = unit_costs.metric_create(
            actor=request.user, team_slug=v["team"], slug=v["slug"], name=v["name"], unit=v["unit"]
        )
        return Response(MetricOutput(metric).data, status=status.HTTP_201_CREATED)


class MetricValuesApi(APIView):
    """GET: the metric's daily values, the team's daily cost and the cost per unit over
    ``start``–``end`` (default: the last 30 days with data). POST: push daily values (a day
    pushed again is replaced; one bad value refuses the whole push)."""

    @extend_schema(
        parameters=[
            OpenApiParameter("start", str, required=False, description="YYYY-MM-DD"),
            OpenApiParameter("end", str, required=False, description="YYYY-MM-DD"),
        ],
        responses={200: UnitCostOutput, **problem_responses(404)},
    )
    def get(self, request, slug: str):
        metric = unit_costs.metric_for_viewer(viewer=request.user, slug=slug)
        try:
            end = (
                selectors.parse_day(request.query_params.get("end"), "end")
                or selectors.data_as_of()
            )
            start = selectors.parse_day(request.query_params.get("start"), "start") or (
                end - dt.timedelta(days=29)
            )
        except Exception as exc:  # a DomainError naming the field
            raise DRFValidationError({getattr(exc, "field", "start"): [str(exc)]}) from None
        if start > end or (end - start).days > 400:
            raise DRFValidationError({"start": ["start must be before end, at most 400 days"]})
        [series] = [
            s
            for s in unit_costs.unit_costs(
                viewer=request.user, team_slug=metric.team.slug, start=start, end=end
            )
            if s["metric"].pk == metric.pk
        ]
        return Response(UnitCostOutput(series).data)

    @extend_schema(request=MetricValuesInput, responses={200: None, **problem_responses(403, 404)})
    def post(self, request, slug: str):
        metric = unit_costs.metric_for_viewer(viewer=request.user, slug=slug)
        data = MetricValuesInput(data=request.data)
        data.is_valid(raise_exception=True)
        stored = unit_costs.metric_values_push(
            actor=request.user,
            metric=metric,
            values=[
                {"day": v["day"].isoformat(), "value": v["value"]}
                for v in data.validated_data["values"]
            ],
        )
        return Response({"stored": stored})
