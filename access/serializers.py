"""API serializers. Input and output are separate classes, so mass assignment is impossible
by construction: inputs declare only what a client may send (anything else is refused),
outputs are read-only renderings and are never used to write.
"""

from __future__ import annotations

from collections.abc import Mapping

from rest_framework import serializers

from .models import AccessRequest, Entitlement, Grant, Risk

# --- Inputs ---------------------------------------------------------------------------

# Free text a person must give (a justification, a denial's reason): at least one visible
# character and no NUL, stated in the schema as a pattern so that a client (or a property-based
# test) knows "   " is not a reason.
TEXT_PATTERN = r"^[^\x00]*\S[^\x00]*$"


def _text(**kwargs) -> serializers.RegexField:
    return serializers.RegexField(TEXT_PATTERN, **kwargs)


class StrictInputSerializer(serializers.Serializer):
    """Refuses (400, naming them) any field it does not declare."""

    refuses_unknown_fields = True  # the schema says additionalProperties: false

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(str(k) for k in data if k not in self.fields)
            if unknown:
                raise serializers.ValidationError(
                    {name: ["Unknown field: it is not accepted here."] for name in unknown}
                )
        return super().to_internal_value(data)


class AccessRequestIn(StrictInputSerializer):
    entitlement = serializers.PrimaryKeyRelatedField(
        queryset=Entitlement.objects.select_related("service"),
        help_text="id of the entitlement requested",
    )
    justification = _text(max_length=4000, help_text="why the access is needed")
    duration_days = serializers.IntegerField(
        min_value=1,
        required=False,
        allow_null=True,
        help_text="days of access; at most the entitlement's max_duration_days "
        "(default: its default_duration_days)",
    )
    principal = serializers.IntegerField(
        min_value=1,
        required=False,
        allow_null=True,
        help_text="user id of the person who gets the access (default: the caller); "
        "a manager may request for their reports",
    )


class ApproveIn(StrictInputSerializer):
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class DenyIn(StrictInputSerializer):
    reason = _text(max_length=2000, help_text="why the request is denied")


class CancelIn(StrictInputSerializer):
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class GrantRevokeIn(StrictInputSerializer):
    reason = _text(
        max_length=300, required=False, default="revoked through the API", help_text="why"
    )


# --- Query-string filters (unknown parameters such as limit/offset pass through) -------


class ServiceFilterIn(serializers.Serializer):
    q = serializers.CharField(required=False, allow_blank=True, max_length=200)
    team = serializers.SlugField(required=False, allow_blank=True, help_text="owner team slug")
    tier = serializers.IntegerField(required=False, min_value=0, max_value=3)
    risk = serializers.ChoiceField(
        choices=Risk.choices, required=False, help_text="has an entitlement of this risk"
    )


class EntitlementFilterIn(serializers.Serializer):
    service = serializers.SlugField(required=False, allow_blank=True, help_text="service slug")
    q = serializers.CharField(required=False, allow_blank=True, max_length=200)
    risk = serializers.ChoiceField(choices=Risk.choices, required=False)
    requestable = serializers.BooleanField(
        required=False, default=False, help_text="only requestable entitlements"
    )


class AccessRequestFilterIn(serializers.Serializer):
    status = serializers.ChoiceField(choices=AccessRequest.Status.choices, required=False)


class GrantFilterIn(serializers.Serializer):
    principal = serializers.RegexField(
        r"^(me|[0-9]{1,18})$",
        required=False,
        help_text="'me' or a user id (default: every grant the caller may see)",
    )
    status = serializers.ChoiceField(
        choices=Grant.Status.choices,
        required=False,
        help_text="default: every status but revoked",
    )


# --- Outputs --------------------------------------------------------------------------


class MeOut(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    name = serializers.CharField()
    team = serializers.CharField(source="team.slug", allow_null=True, help_text="team slug")


class EntitlementOut(serializers.Serializer):
    id = serializers.IntegerField()
    service = serializers.CharField(source="service.slug", help_text="service slug")
    slug = serializers.SlugField()
    name = serializers.CharField()
    description = serializers.CharField()
    risk = serializers.ChoiceField(choices=Risk.choices)
    requestable = serializers.BooleanField()
    default_duration_days = serializers.IntegerField()
    max_duration_days = serializers.IntegerField()
    seat_cost_monthly = serializers.DecimalField(
        max_digits=12, decimal_places=2, coerce_to_string=True
    )
    policy = serializers.CharField(
        source="policy.slug", allow_null=True, help_text="approval policy slug (null: default)"
    )
    allows_break_glass = serializers.BooleanField()


class ServiceOut(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.SlugField()
    name = serializers.CharField()
    owner_team = serializers.CharField(source="owner_team.slug", help_text="owner team slug")
    tier = serializers.IntegerField(min_value=0, max_value=3)
    description = serializers.CharField()
    docs_url = serializers.CharField()
    entitlement_count = serializers.IntegerField()


class ServiceDetailOut(ServiceOut):
    entitlements = EntitlementOut(many=True)


class StageOut(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.CharField()
    required = serializers.IntegerField()


class AccessRequestOut(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=AccessRequest.Status.choices)
    kind = serializers.ChoiceField(choices=AccessRequest.Kind.choices)
    principal = serializers.IntegerField(source="principal_id", help_text="user id")
    principal_email = serializers.EmailField(source="principal.email")
    requester = serializers.IntegerField(source="requester_id", help_text="user id")
    requester_email = serializers.EmailField(source="requester.email")
    entitlement = serializers.IntegerField(source="entitlement_id", help_text="entitlement id")
    entitlement_slug = serializers.SlugField(source="entitlement.slug")
    entitlement_name = serializers.CharField(source="entitlement.name")
    service = serializers.SlugField(source="entitlement.service.slug", help_text="service slug")
    risk = serializers.ChoiceField(source="entitlement.risk", choices=Risk.choices)
    justification = serializers.CharField()
    duration_days = serializers.IntegerField()
    stages = StageOut(many=True)
    current_stage = serializers.SerializerMethodField(
        help_text="1-based number of the stage waiting for approval (null unless pending)"
    )
    auto_approval_reason = serializers.CharField()
    routed_to_security = serializers.BooleanField()
    decision_reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    decided_at = serializers.DateTimeField(allow_null=True)

    def get_current_stage(self, obj: AccessRequest) -> int | None:
        if obj.status != AccessRequest.Status.PENDING or obj.stage is None:
            return None
        return obj.current_stage + 1


class GrantEntitlementOut(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.SlugField()
    name = serializers.CharField()
    service = serializers.SlugField(source="service.slug", help_text="service slug")


class GrantOut(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Grant.Status.choices)
    principal = serializers.IntegerField(source="principal_id", help_text="user id")
    principal_email = serializers.EmailField(source="principal.email")
    entitlement = GrantEntitlementOut()
    request = serializers.IntegerField(source="request_id", allow_null=True)
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField(allow_null=True)
    reason = serializers.CharField()
    revoked_at = serializers.DateTimeField(allow_null=True)
