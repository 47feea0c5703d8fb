"""REST API (read-only): import runs and cost lines, scoped like the pages."""

from __future__ import annotations

import datetime as dt

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework.generics import ListAPIView

from portal.core.api import problem_responses

from . import selectors
from .models import CostLine, ImportRun

MONTH_PATTERN = r"^[1-9][0-9]{3}-(0[1-9]|1[0-2])$"  # YYYY-MM, as the schema documents it


class ImportRunOutput(serializers.ModelSerializer):
    source = serializers.CharField(source="source.name")
    billed_total = serializers.DecimalField(
        max_digits=30, decimal_places=12, coerce_to_string=True, allow_null=True
    )

    class Meta:
        model = ImportRun
        fields = (
            "id",
            "source",
            "status",
            "origin",
            "file_name",
            "file_format",
            "focus_version",
            "periods",
            "rows_read",
            "rows_loaded",
            "rows_rejected",
            "error_count",
            "errors",
            "billed_total",
            "timings",
            "created_at",
            "started_at",
            "finished_at",
        )
        read_only_fields = fields


def _money():
    return serializers.DecimalField(max_digits=30, decimal_places=12, coerce_to_string=True)


class CostLineOutput(serializers.ModelSerializer):
    billed_cost = _money()
    effective_cost = _money()
    list_cost = serializers.DecimalField(
        max_digits=30, decimal_places=12, coerce_to_string=True, allow_null=True
    )
    currency = serializers.CharField(source="billing_currency")
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    rule = serializers.SerializerMethodField()

    class Meta:
        model = CostLine
        fields = (
            "id",
            "billing_period_start",
            "charge_period_start",
            "charge_period_end",
            "billed_cost",
            "effective_cost",
            "list_cost",
            "currency",
            "provider_name",
            "service_name",
            "service_category",
            "region_id",
            "sub_account_id",
            "resource_id",
            "sku_id",
            "charge_category",
            "tags",
            "allocation",
            "team",
            "attributed_service",
            "project",
            "rule",
        )
        read_only_fields = fields

    def get_rule(self, obj) -> str | None:
        return obj.rule.name if obj.rule_id and obj.rule else None


class ImportRunListApi(ListAPIView):
    """Import runs, newest first (platform admins, finance, security and auditors)."""

    serializer_class = ImportRunOutput

    def get_queryset(self):
        return selectors.import_runs_for_viewer(viewer=self.request.user)


class CostLineListApi(ListAPIView):
    """Cost lines charged in ``month``; team members see their own team's lines only."""

    serializer_class = CostLineOutput

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "month",
                str,
                required=True,
                pattern=MONTH_PATTERN,
                description="YYYY-MM (charge period)",
            ),
            OpenApiParameter("team", str, required=False, description="team slug"),
        ],
        responses={200: CostLineOutput(many=True), **problem_responses(404)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        raw = self.request.query_params.get("month", "")
        try:
            month = dt.datetime.strptime(raw, "%Y-%m").date()
        except ValueError:
            raise DRFValidationError({"month": ["required, as YYYY-MM"]}) from None
        team = self.request.query_params.get("team") or None
        return selectors.cost_lines_for_viewer(
            viewer=self.request.user, month=month, team_slug=team
        )
