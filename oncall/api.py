"""``PUT /api/v1/oncall/{schedule}``: push a rota (the schedule's current and future shifts)."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from access.serializers import StrictInputSerializer
from portal.core.errors import ValidationError

from .models import Schedule
from .services import ShiftIn, may_manage_schedule, rota_replace


class ShiftInput(StrictInputSerializer):
    user = serializers.EmailField(help_text="the person on call (e-mail)")
    starts_at = serializers.DateTimeField(help_text="ISO 8601 with a time zone")
    ends_at = serializers.DateTimeField(help_text="ISO 8601 with a time zone")
    external_id = serializers.CharField(max_length=300, required=False, default="")


class RotaIn(StrictInputSerializer):
    shifts = ShiftInput(many=True, help_text="replaces the current and future shifts")


class RotaOut(serializers.Serializer):
    schedule = serializers.CharField()
    created = serializers.IntegerField()
    kept = serializers.IntegerField()
    cancelled = serializers.IntegerField()


class RotaView(APIView):
    @extend_schema(
        operation_id="oncall_rota_replace",
        tags=["oncall"],
        request=RotaIn,
        responses={200: RotaOut},
    )
    def put(self, request, schedule: str):
        found = Schedule.objects.select_related("service").filter(slug=schedule).first()
        if found is None or not may_manage_schedule(request.user, found.service):
            raise Http404("no such schedule")  # a schedule you may not manage is not shown
        serializer = RotaIn(data=request.data)
        if not serializer.is_valid():
            raise serializers.ValidationError(serializer.errors)
        shifts = [ShiftIn(**s) for s in serializer.validated_data["shifts"]]
        if len(shifts) > 2000:
            raise ValidationError("at most 2000 shifts at once", field="shifts")
        counts = rota_replace(actor=request.user, schedule=found, shifts=shifts)
        return Response({"schedule": found.slug, **counts})
