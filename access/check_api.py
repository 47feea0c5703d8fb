"""The check API (A10): ``POST /api/v1/check`` and ``POST /api/v1/check/batch``.

Callers are services, authenticated by service tokens (``manage.py create_service_token``).
A service token checks its own service only, unless its scopes include ``check:*``;
personal tokens and browser sessions are refused (403 and 401): a person's token must
not reveal who else holds what. Anonymous callers get 401.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from tokens.authentication import (
    ServiceTokenAuthentication,
    ServiceTokenRequired,
    service_token_may_check,
)

from .check import MAX_BATCH, check_many


class ServiceTokenScheme(OpenApiAuthenticationExtension):
    target_class = "tokens.authentication.ServiceTokenAuthentication"
    name = "serviceToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A service token: `Authorization: Bearer <token>` "
            "(create one with `manage.py create_service_token --service <slug>`).",
        }


class CheckInput(serializers.Serializer):
    principal = serializers.CharField(max_length=254, help_text="the person's e-mail or id")
    service = serializers.SlugField(max_length=80)
    entitlement = serializers.SlugField(max_length=80)

    def validate_principal(self, value: str) -> str:
        if any(ch.isspace() or not ch.isprintable() for ch in value):
            raise serializers.ValidationError("an e-mail or an id has no spaces")
        return value


class BatchInput(serializers.Serializer):
    checks = CheckInput(many=True, allow_empty=False)

    def validate_checks(self, value: list) -> list:
        if len(value) > MAX_BATCH:
            raise serializers.ValidationError(
                f"at most {MAX_BATCH} checks per batch (got {len(value)})"
            )
        return value

    def to_internal_value(self, data):
        # Refuse an oversized batch before validating each of its items.
        checks = data.get("checks") if isinstance(data, dict) else None
        if isinstance(checks, list) and len(checks) > MAX_BATCH:
            raise serializers.ValidationError(
                {"checks": [f"at most {MAX_BATCH} checks per batch (got {len(checks)})"]}
            )
        return super().to_internal_value(data)


class CheckOutput(serializers.Serializer):
    allowed = serializers.BooleanField()
    reason = serializers.CharField()
    grant = serializers.IntegerField(allow_null=True, help_text="the grant id, if any")
    expires_at = serializers.DateTimeField(allow_null=True)


class BatchItemOutput(CheckOutput):
    principal = serializers.CharField()
    service = serializers.CharField()
    entitlement = serializers.CharField()


class BatchOutput(serializers.Serializer):
    results = BatchItemOutput(many=True)


def _authorize(request, checks: list[dict]) -> None:
    token = request.auth
    refused = sorted(
        {c["service"] for c in checks if not service_token_may_check(token, c["service"])}
    )
    if refused:
        raise exceptions.PermissionDenied(
            f"this service token may not check service(s): {', '.join(refused)}"
        )


class _CheckBase(APIView):
    authentication_classes = [ServiceTokenAuthentication]
    permission_classes = [ServiceTokenRequired]


class CheckView(_CheckBase):
    @extend_schema(request=CheckInput, responses={200: CheckOutput}, operation_id="check")
    def post(self, request):
        data = CheckInput(data=request.data)
        data.is_valid(raise_exception=True)
        item = data.validated_data
        _authorize(request, [item])
        decision = check_many([(item["principal"], item["service"], item["entitlement"])])[0]
        return Response(CheckOutput(decision.as_dict()).data)


class CheckBatchView(_CheckBase):
    @extend_schema(request=BatchInput, responses={200: BatchOutput}, operation_id="check_batch")
    def post(self, request):
        data = BatchInput(data=request.data)
        data.is_valid(raise_exception=True)
        checks = data.validated_data["checks"]
        _authorize(request, checks)
        decisions = check_many([(c["principal"], c["service"], c["entitlement"]) for c in checks])
        results = [{**c, **d.as_dict()} for c, d in zip(checks, decisions, strict=True)]
        return Response(BatchOutput({"results": results}).data)
