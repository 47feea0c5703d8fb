"""REST API v1, mounted at /api/v1/ (see docs/openapi.yaml; regenerate with `make schema`)."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import IsAuthenticated

from tokens.permissions import TokenScopes

from . import api, check_api

app_name = "api"

urlpatterns = [
    # The check API first: Django tries the patterns in order, and it is the hot path.
    path("check", check_api.CheckView.as_view(), name="check"),
    path("check/batch", check_api.CheckBatchView.as_view(), name="check-batch"),
    path("me", api.MeView.as_view(), name="me"),
    path("services/", api.ServiceListView.as_view(), name="service-list"),
    path("services/<slug:slug>", api.ServiceDetailView.as_view(), name="service-detail"),
    path("entitlements/", api.EntitlementListView.as_view(), name="entitlement-list"),
    path("requests/", api.AccessRequestListView.as_view(), name="request-list"),
    path("requests/<int:pk>", api.AccessRequestDetailView.as_view(), name="request-detail"),
    path(
        "requests/<int:pk>/approve", api.AccessRequestApproveView.as_view(), name="request-approve"
    ),
    path("requests/<int:pk>/deny", api.AccessRequestDenyView.as_view(), name="request-deny"),
    path("requests/<int:pk>/cancel", api.AccessRequestCancelView.as_view(), name="request-cancel"),
    path("approvals/", api.ApprovalInboxView.as_view(), name="approval-list"),
    path("grants/", api.GrantListView.as_view(), name="grant-list"),
    path("grants/<int:pk>/revoke", api.GrantRevokeView.as_view(), name="grant-revoke"),
    path(
        "schema",
        SpectacularAPIView.as_view(permission_classes=[IsAuthenticated, TokenScopes]),
        name="schema",
    ),
]
