"""The check API (A10): ``POST /api/v1/check`` and ``POST /api/v1/check/batch``.

Callers are services, authenticated by service tokens (``manage.py create_service_token``).
A service token checks its own service only, unless its scopes include ``check:*``;
personal tokens and browser sessions are refused (403 and 401): a person's token must
not reveal who else holds what. Anonymous callers get 401.
"""

from __future__ import annotations

import json
import re

from django.core.cache import cache
from django.http import HttpResponse
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import exceptions, serializers
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.core.cache import same_life
from portal.core.nearcache import near_cache
from tokens.authentication import (
    MAX_TOKEN_LENGTH,
    ServiceTokenAuthentication,
    ServiceTokenRequired,
    service_token_may_check,
    token_cache_key,
)
from tokens.services import hash_secret

from .check import MAX_BATCH, cache_keys, check_many


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


# A principal is named in one canonical form, the form the answer cache is keyed and
# invalidated by: a user id as ASCII digits without leading zeros (at most 18, so it fits
# the database's bigint), or an e-mail address (printable ASCII, one "@"), lower-cased.
# "007" or "²" (a Unicode digit) would otherwise be cached under a key no revocation bumps,
# or fail the id lookup.
MAX_PRINCIPAL_LENGTH = 254
MAX_SLUG_LENGTH = 80
PRINCIPAL_PATTERN = r"^(?:[1-9][0-9]{0,17}|[!-?A-~]+@[!-?A-~]+)$"
_PRINCIPAL = re.compile(PRINCIPAL_PATTERN.removesuffix("$") + r"\Z")
PRINCIPAL_FORMS = (
    "a user id (ASCII digits without leading zeros, at most 18) "
    "or an e-mail address (printable ASCII)"
)


def canonical_principal(value: str) -> str | None:
    """``value`` in its canonical form (an id as is, an e-mail lower-cased), or None when
    it is neither a user id nor an e-mail address."""
    if not _PRINCIPAL.match(value):
        return None
    return value if value[0].isdigit() else value.lower()


@extend_schema_field(
    {"type": "string", "maxLength": MAX_PRINCIPAL_LENGTH, "pattern": PRINCIPAL_PATTERN}
)
class PrincipalField(serializers.CharField):
    """A principal as :func:`canonical_principal` accepts it (the pattern, for the schema)."""


class CheckInput(serializers.Serializer):
    principal = PrincipalField(
        max_length=MAX_PRINCIPAL_LENGTH,
        help_text="the person: " + PRINCIPAL_FORMS + "; e-mails are compared lower-cased",
    )
    service = serializers.SlugField(max_length=MAX_SLUG_LENGTH)
    entitlement = serializers.SlugField(max_length=MAX_SLUG_LENGTH)

    def validate_principal(self, value: str) -> str:
        if any(ch.isspace() or not ch.isprintable() for ch in value):
            raise serializers.ValidationError("an e-mail or an id has no spaces")
        canonical = canonical_principal(value)
        if canonical is None:
            raise serializers.ValidationError(f"expected {PRINCIPAL_FORMS}")
        return canonical


class BatchInput(serializers.Serializer):
    # A ListField (not many=True) so that the schema states minItems and maxItems.
    checks = serializers.ListField(
        child=CheckInput(), allow_empty=False, min_length=1, max_length=MAX_BATCH
    )

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
    # Not throttled: service tokens only, and the hot path below has its own latency target
    # (a throttle would add a cache write to every call); MAX_BATCH bounds a call's work.
    throttle_classes: list = []
    parser_classes = [JSONParser]  # JSON bodies only, as the hot path reads them


# --- the hot path ---------------------------------------------------------------------
# A well-formed single check from a live, cached service token is answered without DRF's
# request/serializer/renderer machinery (which cost more than the check itself). Anything
# else (bad or missing token, bad JSON, invalid fields, another service) returns None and
# falls through to the DRF view, so every error keeps its one problem+json shape.
# tests/api/test_check_fast_path.py proves both paths answer byte for byte the same.

_SLUG = re.compile(r"^[-a-zA-Z0-9_]+\Z")
_FAST_AUTH = ServiceTokenAuthentication()
_EXPIRES = serializers.DateTimeField()
_FAST_MAX_BODY = 4096  # a single check is a few hundred bytes; larger bodies go to DRF


def _fast_item(data) -> tuple[str, str, str] | None:
    if not isinstance(data, dict):
        return None
    principal, service, entitlement = (
        data.get("principal"),
        data.get("service"),
        data.get("entitlement"),
    )
    if not (type(principal) is str and type(service) is str and type(entitlement) is str):
        return None
    if not 0 < len(principal) <= MAX_PRINCIPAL_LENGTH or not principal.isprintable():
        return None
    if " " in principal or principal != principal.strip():
        return None
    canonical = canonical_principal(principal)
    if canonical is None:
        return None
    for slug in (service, entitlement):
        if len(slug) > MAX_SLUG_LENGTH or not _SLUG.match(slug):
            return None
    return canonical, service, entitlement


def fast_check(request) -> HttpResponse | None:
    if request.method != "POST" or request.content_type != "application/json":
        return None
    scheme, _, secret = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "bearer" or not secret or len(secret) > MAX_TOKEN_LENGTH:
        return None
    if not secret.isascii() or not secret.isprintable() or " " in secret:
        return None
    try:
        if int(request.META.get("CONTENT_LENGTH") or 0) > _FAST_MAX_BODY:
            return None
        item = _fast_item(json.loads(request.body))
    except ValueError:
        return None
    if item is None:
        return None
    # The token's entry and the answer's keys together: from this process's near cache
    # when it holds them all, else in one round trip to Redis.
    token_key = token_cache_key(hash_secret(secret))
    keys = [token_key, *cache_keys([item])]
    near = near_cache()
    found, ticket = near.lookup(keys) if near is not None else (None, None)
    layer = "near"
    if found is None:
        layer = "redis"
        try:
            found = cache.get_many(keys)
        except Exception:  # noqa: BLE001 - Redis down: the DRF path answers from the database
            return None
        if not same_life(found):  # Redis lost or rolled back its state: the cache is dropped
            return None
        if near is not None:
            near.remember(ticket, found)
    try:
        _, token = _FAST_AUTH.authenticate_credentials(
            secret, prefetched=found.get(token_key), was_read=True
        )
    except exceptions.AuthenticationFailed:
        return None
    if token.service_id is None or not service_token_may_check(token, item[1]):
        return None
    decision = check_many([item], prefetched=found, layer=layer)[0]
    body = decision.as_dict()
    if body["expires_at"] is not None:
        body["expires_at"] = _EXPIRES.to_representation(body["expires_at"])
    return HttpResponse(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        content_type="application/json",
        headers={"Vary": "Accept", "Allow": "POST, OPTIONS"},
    )


class CheckView(_CheckBase):
    @classmethod
    def as_view(cls, **initkwargs):
        drf_view = super().as_view(**initkwargs)

        def view(request, *args, **kwargs):
            response = fast_check(request)
            return response if response is not None else drf_view(request, *args, **kwargs)

        # What Django, the CSRF middleware and drf-spectacular read from a DRF view.
        view.cls = drf_view.cls
        view.initkwargs = drf_view.initkwargs
        view.csrf_exempt = True
        view.__name__ = drf_view.__name__
        view.__doc__ = drf_view.__doc__
        return view

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
