"""REST API of anomalies: the list by state, decisions (acknowledge, dismiss as expected,
snooze) and the caller's alert subscriptions. An anomaly the caller may not see is 404."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.core.api import problem_responses

from .analytics import alerts, selectors, services
from .analytics.models import Anomaly, AnomalySubscription, AnomalySuppression


def _money(**extra):
    return serializers.DecimalField(max_digits=30, decimal_places=2, coerce_to_string=True, **extra)


class AnomalyOutput(serializers.ModelSerializer):
    team = serializers.CharField(source="team.slug", read_only=True)
    expected = _money()
    actual = _money()
    impact = _money()

    class Meta:
        model = Anomaly
        fields = (
            "id",
            "team",
            "service_name",
            "day",
            "expected",
            "actual",
            "impact",
            "reason",
            "drivers",
            "status",
            "note",
            "dismiss_reason",
            "snoozed_until",
            "created_at",
        )
        read_only_fields = fields


class AnomalyListApi(ListAPIView):
    """Anomalies of the teams whose costs the caller may see, newest first, by state."""

    serializer_class = AnomalyOutput

    @extend_schema(
        parameters=[
            OpenApiParameter("team", str, required=False, description="team slug"),
            OpenApiParameter("state", str, required=False, enum=list(Anomaly.Status.values)),
        ],
        responses={200: AnomalyOutput(many=True), **problem_responses(404)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        state = self.request.query_params.get("state")
        if state is not None and state not in Anomaly.Status.values:
            raise DRFValidationError(
                {"state": [f"expected one of: {', '.join(Anomaly.Status.values)}"]}
            )
        return selectors.anomalies_for_viewer(
            viewer=self.request.user,
            team_slug=self.request.query_params.get("team") or None,
            status=state or None,
        )


class AnomalyDecisionInput(serializers.Serializer):
    action = serializers.ChoiceField(choices=["acknowledge", "dismiss", "snooze"])
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500)
    pattern = serializers.ChoiceField(
        choices=AnomalySuppression.Pattern.values, required=False, help_text="for dismiss"
    )
    until = serializers.DateTimeField(required=False, help_text="for snooze")


class AnomalyDecisionApi(APIView):
    """Acknowledge; dismiss as expected (``reason`` and ``pattern``: the detector then skips
    that pattern for the team × service); or snooze ``until`` a time (at most 90 days)."""

    @extend_schema(
        request=AnomalyDecisionInput,
        responses={200: AnomalyOutput, **problem_responses(404, 409)},
    )
    def post(self, request, pk: int):
        anomaly = selectors.anomaly_get_for_viewer(viewer=request.user, pk=pk)
        data = AnomalyDecisionInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        if v["action"] == "acknowledge":
            result = services.anomaly_acknowledge(
                actor=request.user, anomaly_id=anomaly.pk, note=v.get("reason", "")
            )
        elif v["action"] == "dismiss":
            result = alerts.anomaly_dismiss(
                actor=request.user,
                anomaly_id=anomaly.pk,
                reason=v.get("reason", ""),
                pattern=v.get("pattern", ""),
            )
        else:
            if "until" not in v:
                raise DRFValidationError({"until": ["required to snooze"]})
            result = alerts.anomaly_snooze(
                actor=request.user, anomaly_id=anomaly.pk, until=v["until"]
            )
        return Response(AnomalyOutput(result).data)


class SubscriptionOutput(serializers.ModelSerializer):
    team = serializers.CharField(source="team.slug", read_only=True, allow_null=True, default=None)
    min_impact = _money()

    class Meta:
        model = AnomalySubscription
        fields = (
            "id",
            "scope",
            "team",
            "service_name",
            "min_impact",
            "cadence",
            "channel",
            "last_sent_at",
            "created_at",
        )
        read_only_fields = fields


class SubscriptionInput(serializers.Serializer):
    scope = serializers.ChoiceField(choices=AnomalySubscription.Scope.values)
    team = serializers.CharField(required=False, allow_blank=True, max_length=120)
    service_name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    min_impact = serializers.DecimalField(
        max_digits=18, decimal_places=2, required=False, min_value=0
    )
    cadence = serializers.ChoiceField(choices=AnomalySubscription.Cadence.values)
    channel = serializers.ChoiceField(choices=AnomalySubscription.Channel.values)
    chat_webhook_url = serializers.URLField(required=False, allow_blank=True, max_length=500)


class SubscriptionListApi(ListAPIView):
    """The caller's active anomaly alert subscriptions; POST adds one."""

    serializer_class = SubscriptionOutput

    def get_queryset(self):
        return (
            AnomalySubscription.objects.filter(user=self.request.user, active=True)
            .select_related("team")
            .order_by("id")
        )

    @extend_schema(
        request=SubscriptionInput, responses={201: SubscriptionOutput, **problem_responses(403)}
    )
    def post(self, request):
        data = SubscriptionInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        sub = alerts.subscription_create(
            actor=request.user,
            scope=v["scope"],
            team_slug=v.get("team", ""),
            service_name=v.get("service_name", ""),
            min_impact=v.get("min_impact") or 0,
            cadence=v["cadence"],
            channel=v["channel"],
            chat_webhook_url=v.get("chat_webhook_url", ""),
        )
        return Response(SubscriptionOutput(sub).data, status=status.HTTP_201_CREATED)


class SubscriptionDetailApi(APIView):
    """End one of the caller's subscriptions."""

    @extend_schema(responses={204: None, **problem_responses(404)})
    def delete(self, request, pk: int):
        if not AnomalySubscription.objects.filter(pk=pk, user=request.user, active=True).exists():
            from django.http import Http404

            raise Http404("no such subscription")
        alerts.subscription_end(actor=request.user, subscription_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)
