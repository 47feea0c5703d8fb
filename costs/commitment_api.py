"""REST API of commitment discounts: the month's utilisation, coverage, savings and trend."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.core.api import problem_responses
from portal.core.errors import DomainError

from .analytics import selectors
from .analytics.commitments import commitment_report
from .api import MONTH_PATTERN


def _money():
    return serializers.DecimalField(max_digits=30, decimal_places=2, coerce_to_string=True)


def _pct():
    return serializers.DecimalField(
        max_digits=9, decimal_places=2, coerce_to_string=True, allow_null=True
    )


class TeamBenefitOutput(serializers.Serializer):
    team = serializers.CharField(allow_null=True, help_text="null: unallocated usage")
    used = _money()
    savings = _money()
    share_pct = _pct()


class CommitmentOutput(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    category = serializers.CharField()
    type = serializers.CharField()
    used = _money()
    unused = _money()
    utilisation_pct = _pct()
    savings = _money()
    teams = TeamBenefitOutput(many=True)


class CoverageOutput(serializers.Serializer):
    committed = _money()
    eligible = _money()
    coverage_pct = _pct()


class ServiceCoverageOutput(CoverageOutput):
    service = serializers.CharField()


class TeamCoverageOutput(CoverageOutput):
    team = serializers.CharField(allow_null=True)


class TrendOutput(serializers.Serializer):
    month = serializers.DateField(format="%Y-%m")
    utilisation_pct = _pct()
    coverage_pct = _pct()
    unused = _money()
    committed = _money()
    eligible = _money()


class CommitmentReportOutput(serializers.Serializer):
    month = serializers.DateField(format="%Y-%m")
    team = serializers.CharField(source="team.slug", allow_null=True, default=None)
    used = _money()
    unused = _money()
    utilisation_pct = _pct()
    committed = _money()
    eligible = _money()
    coverage_pct = _pct()
    commitments = CommitmentOutput(many=True)
    coverage_by_service = ServiceCoverageOutput(many=True)
    coverage_by_team = TeamCoverageOutput(many=True)
    trend = TrendOutput(many=True)


class CommitmentReportApi(APIView):
    """Commitment utilisation (per commitment), coverage (per service and team), savings and
    the teams that benefit, and the six-month trend: a team's (who may see its costs) or,
    without ``team``, the org's (org-wide roles only; 404 for anyone else)."""

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "month", str, required=False, pattern=MONTH_PATTERN, description="YYYY-MM"
            ),
            OpenApiParameter("team", str, required=False, description="team slug"),
        ],
        responses={200: CommitmentReportOutput, **problem_responses(404)},
    )
    def get(self, request):
        try:
            month = selectors.parse_month(
                request.query_params.get("month"), default=selectors.data_as_of()
            )
        except DomainError as exc:
            raise DRFValidationError({"month": [exc.message]}) from None
        report = commitment_report(
            viewer=request.user, month=month, team_slug=request.query_params.get("team") or None
        )
        return Response(CommitmentReportOutput(report).data)
