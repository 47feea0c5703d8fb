"""REST API v1 of the access app (A12). Views are thin: parse, call one selector or
service, render. Who may see or do what is decided by the selectors and services; objects
the caller may not see answer 404. Errors are problem+json (portal.core.api).
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import QueryDict
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from portal.core.api import problem_responses
from portal.core.errors import NotPermitted, ValidationError

from . import selectors, services
from .models import AccessRequest, Entitlement, Grant, Service
from .serializers import (
    AccessRequestFilterIn,
    AccessRequestIn,
    AccessRequestOut,
    ApproveIn,
    CancelIn,
    DenyIn,
    EntitlementFilterIn,
    EntitlementOut,
    GrantFilterIn,
    GrantOut,
    GrantRevokeIn,
    MeOut,
    ServiceDetailOut,
    ServiceFilterIn,
    ServiceOut,
)


def parse(serializer_class, data) -> dict:
    """Validate input; on failure raise a 400 that names the (first) field at fault.

    A query string is read as a plain mapping (the last value of a repeated name), so an
    empty value (``?status=``) is validated as given, not dropped as an empty form field.
    """
    if isinstance(data, QueryDict):
        data = data.dict()
    serializer = serializer_class(data=data)
    if serializer.is_valid():
        return serializer.validated_data
    errors = serializer.errors
    field = next(iter(errors))
    detail = "; ".join(
        f"{name}: {' '.join(str(m) for m in (msgs if isinstance(msgs, list) else [msgs]))}"
        for name, msgs in errors.items()
    )
    raise ValidationError(detail, field=field)


def _fake(view) -> bool:
    """True while drf-spectacular inspects the view (no real request)."""
    return getattr(view, "swagger_fake_view", False)


# --- The caller -----------------------------------------------------------------------


class MeView(APIView):
    @extend_schema(operation_id="me", tags=["me"], responses={200: MeOut})
    def get(self, request):
        return Response(MeOut(request.user).data)


# --- Catalog --------------------------------------------------------------------------


class ServiceListView(generics.ListAPIView):
    serializer_class = ServiceOut

    @extend_schema(
        operation_id="services_list",
        tags=["catalog"],
        parameters=[ServiceFilterIn],
        responses={200: ServiceOut(many=True)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[Service]:
        if _fake(self):
            return Service.objects.none()
        f = parse(ServiceFilterIn, self.request.query_params)
        return selectors.services_list(
            viewer=self.request.user,
            q=f.get("q", ""),
            team=f.get("team", ""),
            tier=str(f["tier"]) if "tier" in f else "",
            risk=f.get("risk", ""),
        )


class ServiceDetailView(APIView):
    @extend_schema(
        operation_id="services_retrieve",
        tags=["catalog"],
        responses={200: ServiceDetailOut},
    )
    def get(self, request, slug: str):
        service = selectors.service_get(viewer=request.user, slug=slug)
        entitlements = list(selectors.entitlements_list(viewer=request.user, service=service.slug))
        service.entitlement_count = len(entitlements)
        body = {
            **ServiceOut(service).data,
            "entitlements": EntitlementOut(entitlements, many=True).data,
        }
        return Response(body)


class EntitlementListView(generics.ListAPIView):
    serializer_class = EntitlementOut

    @extend_schema(
        operation_id="entitlements_list",
        tags=["catalog"],
        parameters=[EntitlementFilterIn],
        responses={200: EntitlementOut(many=True)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[Entitlement]:
        if _fake(self):
            return Entitlement.objects.none()
        f = parse(EntitlementFilterIn, self.request.query_params)
        return selectors.entitlements_list(
            viewer=self.request.user,
            service=f.get("service", ""),
            q=f.get("q", ""),
            risk=f.get("risk", ""),
            requestable_only=f.get("requestable", False),
        )


# --- Requests -------------------------------------------------------------------------

REQUEST_RELATED = ("principal", "requester", "entitlement__service")


def _principal_for(viewer: User, principal_id: int | None) -> User:
    if principal_id is None or principal_id == viewer.pk:
        return viewer
    principal = User.objects.filter(pk=principal_id).first()
    if principal is None:
        # Same answer as "not your report": user ids are not probed through this endpoint.
        raise NotPermitted(
            "you may request access only for yourself or your reports", field="principal"
        )
    return principal


class AccessRequestListView(generics.ListAPIView):
    parser_classes = [JSONParser]  # JSON bodies only
    serializer_class = AccessRequestOut

    @extend_schema(
        operation_id="requests_list",
        tags=["requests"],
        parameters=[AccessRequestFilterIn],
        responses={200: AccessRequestOut(many=True)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[AccessRequest]:
        if _fake(self):
            return AccessRequest.objects.none()
        f = parse(AccessRequestFilterIn, self.request.query_params)
        qs = selectors.access_requests_for_viewer(viewer=self.request.user)
        if "status" in f:
            qs = qs.filter(status=f["status"])
        return qs.select_related(*REQUEST_RELATED).order_by("-created_at", "-id")

    @extend_schema(
        operation_id="requests_create",
        tags=["requests"],
        request=AccessRequestIn,
        responses={201: AccessRequestOut, **problem_responses(409)},
    )
    def post(self, request):
        data = parse(AccessRequestIn, request.data)
        access_request = services.access_request_submit(
            actor=request.user,
            principal=_principal_for(request.user, data.get("principal")),
            entitlement=data["entitlement"],
            justification=data["justification"],
            duration_days=data.get("duration_days"),
        )
        return Response(
            AccessRequestOut(access_request).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": reverse("api:request-detail", args=[access_request.pk])},
        )


class AccessRequestDetailView(APIView):
    @extend_schema(
        operation_id="requests_retrieve",
        tags=["requests"],
        responses={200: AccessRequestOut},
    )
    def get(self, request, pk: int):
        return Response(
            AccessRequestOut(selectors.access_request_get(viewer=request.user, pk=pk)).data
        )


class _DecisionView(APIView):
    """POST /requests/<id>/<action>: 404 unless visible, then the service decides."""

    parser_classes = [JSONParser]  # JSON bodies only

    input_class: type = ApproveIn

    def act(self, request, pk: int, data: dict) -> AccessRequest:  # pragma: no cover
        raise NotImplementedError

    def post(self, request, pk: int):
        selectors.access_request_get(viewer=request.user, pk=pk)  # 404 when not visible
        data = parse(self.input_class, request.data)
        return Response(AccessRequestOut(self.act(request, pk, data)).data)


_DECISION_RESPONSES = {200: AccessRequestOut, **problem_responses(409)}


class AccessRequestApproveView(_DecisionView):
    input_class = ApproveIn

    @extend_schema(
        operation_id="requests_approve",
        tags=["requests"],
        request=ApproveIn,
        responses=_DECISION_RESPONSES,
        description="Approve the current stage (the request is approved when its last stage "
        "has enough approvals).",
    )
    def post(self, request, pk: int):
        return super().post(request, pk)

    def act(self, request, pk, data):
        return services.access_request_approve(
            actor=request.user, request_id=pk, reason=data["reason"]
        )


class AccessRequestDenyView(_DecisionView):
    input_class = DenyIn

    @extend_schema(
        operation_id="requests_deny",
        tags=["requests"],
        request=DenyIn,
        responses=_DECISION_RESPONSES,
    )
    def post(self, request, pk: int):
        return super().post(request, pk)

    def act(self, request, pk, data):
        return services.access_request_deny(
            actor=request.user, request_id=pk, reason=data["reason"]
        )


class AccessRequestCancelView(_DecisionView):
    input_class = CancelIn

    @extend_schema(
        operation_id="requests_cancel",
        tags=["requests"],
        request=CancelIn,
        responses=_DECISION_RESPONSES,
    )
    def post(self, request, pk: int):
        return super().post(request, pk)

    def act(self, request, pk, data):
        return services.access_request_cancel(
            actor=request.user, request_id=pk, reason=data["reason"]
        )


class ApprovalInboxView(generics.ListAPIView):
    serializer_class = AccessRequestOut

    @extend_schema(
        operation_id="approvals_list",
        tags=["requests"],
        responses={200: AccessRequestOut(many=True)},
        description="The pending requests waiting on the caller (or on people the caller "
        "stands in for).",
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[AccessRequest]:
        if _fake(self):
            return AccessRequest.objects.none()
        return selectors.approval_inbox(viewer=self.request.user)


# --- Grants ---------------------------------------------------------------------------


class GrantListView(generics.ListAPIView):
    serializer_class = GrantOut

    @extend_schema(
        operation_id="grants_list",
        tags=["grants"],
        parameters=[GrantFilterIn],
        responses={200: GrantOut(many=True)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[Grant]:
        if _fake(self):
            return Grant.objects.none()
        f = parse(GrantFilterIn, self.request.query_params)
        viewer = self.request.user
        principal = f.get("principal")
        if principal == "me":
            qs = selectors.my_grants(viewer=viewer, include_ended=True)
        else:
            qs = selectors.grants_for_viewer(viewer=viewer)
            if principal:
                qs = qs.filter(principal_id=int(principal))
        if "status" in f:
            qs = qs.filter(status=f["status"])
        else:
            qs = qs.exclude(status=Grant.Status.REVOKED)
        return qs.select_related("principal", "entitlement__service").order_by("-created_at", "-id")


class GrantRevokeView(APIView):
    parser_classes = [JSONParser]  # JSON bodies only

    @extend_schema(
        operation_id="grants_revoke",
        tags=["grants"],
        request=GrantRevokeIn,
        responses={200: GrantOut, **problem_responses(409)},
        description="The holder gives the access up; the owner team or an admin takes it away.",
    )
    def post(self, request, pk: int):
        selectors.grant_get(viewer=request.user, pk=pk)  # 404 when not visible
        data = parse(GrantRevokeIn, request.data)
        grant = services.grant_revoke(actor=request.user, grant_id=pk, reason=data["reason"])
        return Response(GrantOut(grant).data)
