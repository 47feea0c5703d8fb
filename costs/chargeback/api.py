"""REST API of chargeback: allocated lines (paginated) and the FOCUS export of a month."""

from __future__ import annotations

import os
import tempfile

from django.http import FileResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework.generics import ListAPIView
from rest_framework.views import APIView

from accounts.models import Team
from portal.core.api import problem_responses
from portal.core.errors import DomainError

from ..analytics.selectors import parse_month
from ..api import MONTH_PATTERN
from ..models import AttributionRule
from . import focus_export
from .selectors import allocated_lines_for_viewer, allocation_scope_for_viewer


def _exact():
    return serializers.DecimalField(max_digits=30, decimal_places=12, coerce_to_string=True)


def _cents():
    return serializers.DecimalField(max_digits=30, decimal_places=2, coerce_to_string=True)


class AllocatedLineOutput(serializers.Serializer):
    id = serializers.IntegerField(help_text="the cost line")
    team = serializers.SerializerMethodField(help_text="receiving team (null: unallocated)")
    allocation = serializers.SerializerMethodField(help_text="direct, shared or unallocated")
    rule = serializers.SerializerMethodField()
    share = serializers.DecimalField(max_digits=38, decimal_places=18, coerce_to_string=True)
    allocated_billed_cost = _cents()
    allocated_effective_cost = _cents()
    allocated_billed_cost_exact = _exact()
    allocated_effective_cost_exact = _exact()
    billed_cost = _exact()
    effective_cost = _exact()
    currency = serializers.CharField(source="billing_currency")
    billing_period_start = serializers.DateField()
    charge_period_start = serializers.DateTimeField()
    provider_name = serializers.CharField()
    service_name = serializers.CharField()
    service_category = serializers.CharField()
    region_id = serializers.CharField()
    sub_account_id = serializers.CharField()
    resource_id = serializers.CharField()
    charge_category = serializers.CharField()
    pricing_category = serializers.CharField()
    attributed_service = serializers.CharField()
    project = serializers.CharField()

    def to_representation(self, instance):
        row = dict(instance)
        row["allocated_billed_cost"] = row["allocated_billed"]
        row["allocated_effective_cost"] = row["allocated_effective"]
        row["allocated_billed_cost_exact"] = row["allocated_billed_exact"]
        row["allocated_effective_cost_exact"] = row["allocated_effective_exact"]
        return super().to_representation(row)

    def get_team(self, row) -> str | None:
        team_id = row["alloc_team_id"]
        return None if team_id is None else self.context["teams"].get(team_id)

    def get_allocation(self, row) -> str:
        return row["allocation"] if row["alloc_team_id"] is not None else "unallocated"

    def get_rule(self, row) -> str | None:
        rule_id = row["rule_id"]
        return None if rule_id is None else self.context["rules"].get(rule_id)


MONTH_PARAM = OpenApiParameter(
    "month", str, required=True, pattern=MONTH_PATTERN, description="YYYY-MM (charge period)"
)
TEAM_PARAM = OpenApiParameter("team", str, required=False, description="team slug")


def _month(request):
    try:
        return parse_month(request.query_params.get("month"))
    except DomainError as exc:
        raise DRFValidationError({"month": [exc.message]}) from None


class AllocatedLineListApi(ListAPIView):
    """A month's allocated cost lines: one row per (line, receiving team). A direct line is
    allocated in full, a shared line with the team's split of its rule; a team's
    ``allocated_billed_cost`` values add up to its summary's ``billed_cost`` to the cent.
    Without ``team``: every team and the unallocated lines for the org-wide roles, the
    caller's own teams for everyone else."""

    serializer_class = AllocatedLineOutput

    @extend_schema(
        parameters=[MONTH_PARAM, TEAM_PARAM],
        responses={200: AllocatedLineOutput(many=True), **problem_responses(404)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["teams"] = dict(Team.objects.values_list("id", "slug"))
        context["rules"] = dict(AttributionRule.objects.values_list("id", "name"))
        return context

    def get_queryset(self):
        return allocated_lines_for_viewer(
            viewer=self.request.user,
            month=_month(self.request),
            team_slug=self.request.query_params.get("team") or None,
        )


def export_response(*, viewer, month, team_slug: str | None, fmt: str):
    """The FOCUS export as a download (CSV streamed; Parquet written to a temporary file
    first, because a Parquet footer comes last)."""
    if fmt not in focus_export.FORMATS:
        raise DomainError(
            f"format must be one of: {', '.join(focus_export.FORMATS)}", field="output"
        )
    scope = allocation_scope_for_viewer(
        viewer=viewer, month=month, team_slug=team_slug, org_if_allowed=True
    )
    name = f"focus-allocated-{team_slug or 'org'}-{month:%Y-%m}.{fmt}"
    if fmt == "csv":
        response = StreamingHttpResponse(
            focus_export.csv_download(scope),
            content_type=focus_export.CONTENT_TYPES["csv"],
        )
    else:
        handle, path = tempfile.mkstemp(suffix=".parquet", prefix="tollgate-focus-")
        os.close(handle)
        try:
            focus_export.export_to_file(scope, path, "parquet")
            stream = open(path, "rb")  # noqa: SIM115 - FileResponse closes it
        finally:
            os.unlink(path)  # the open handle keeps the data until the response is sent
        response = FileResponse(stream, content_type=focus_export.CONTENT_TYPES["parquet"])
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


class FocusExportApi(APIView):
    """A month's allocated costs as a FOCUS 1.2 file (CSV or Parquet): a team's (who may see
    its costs) or, without ``team``, the org's (org-wide roles) or the caller's own teams."""

    @extend_schema(
        parameters=[
            MONTH_PARAM,
            TEAM_PARAM,
            OpenApiParameter(
                "output",
                str,
                required=False,
                enum=list(focus_export.FORMATS),
                description="csv (default) or parquet",
            ),
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY, description="FOCUS CSV"),
            (200, "application/vnd.apache.parquet"): OpenApiResponse(
                OpenApiTypes.BINARY, description="FOCUS Parquet"
            ),
            **problem_responses(404),
        },
    )
    def get(self, request):
        month = _month(request)
        try:
            return export_response(
                viewer=request.user,
                month=month,
                team_slug=request.query_params.get("team") or None,
                fmt=request.query_params.get("output") or "csv",
            )
        except DomainError as exc:
            raise DRFValidationError({"output": [exc.message]}) from None
