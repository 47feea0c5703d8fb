"""HTML routes of the access app, mounted at the site root."""

from django.urls import path

from . import views

app_name = "access"

urlpatterns = [
    path("catalog/", views.catalog, name="catalog"),
    path("catalog/new/", views.service_create, name="service-create"),
    path("catalog/<slug:slug>/", views.service_detail, name="service-detail"),
    path("catalog/<slug:slug>/edit/", views.service_edit, name="service-edit"),
    path(
        "catalog/<slug:slug>/connector-health/",
        views.service_connector_health,
        name="service-connector-health",
    ),
    path(
        "catalog/<slug:slug>/entitlements/new/",
        views.entitlement_create,
        name="entitlement-create",
    ),
    path(
        "catalog/<slug:slug>/entitlements/<int:pk>/edit/",
        views.entitlement_edit,
        name="entitlement-edit",
    ),
    path("catalog-changes/", views.catalog_changes, name="catalog-changes"),
    path(
        "catalog-changes/<int:pk>/apply/",
        views.catalog_change_decide,
        {"decision": "apply"},
        name="catalog-change-apply",
    ),
    path(
        "catalog-changes/<int:pk>/reject/",
        views.catalog_change_decide,
        {"decision": "reject"},
        name="catalog-change-reject",
    ),
    path("requests/", views.request_list, name="request-list"),
    path("requests/new/", views.request_new, name="request-new"),
    path("requests/new/preview/", views.request_preview, name="request-preview"),
    path("requests/new/picker/", views.request_picker, name="request-picker"),
    path("requests/<int:pk>/", views.request_detail, name="request-detail"),
    path("requests/<int:pk>/cancel/", views.request_cancel, name="request-cancel"),
    path("requests/<int:pk>/approve/", views.request_approve, name="request-approve"),
    path("requests/<int:pk>/deny/", views.request_deny, name="request-deny"),
    path("approvals/", views.approvals, name="approvals"),
    path("approvals/bulk/", views.approvals_bulk, name="approvals-bulk"),
    path("grants/", views.grant_list, name="grant-list"),
    path("grants/<int:pk>/", views.grant_detail, name="grant-detail"),
    path("grants/<int:pk>/revoke/", views.grant_revoke, name="grant-revoke"),
    path("bundles/", views.bundle_list, name="bundle-list"),
    path("bundles/<slug:slug>/request/", views.bundle_request_new, name="bundle-request-new"),
    path("bundles/<slug:slug>/rules/", views.bundle_rules, name="bundle-rules"),
    path("bundle-requests/<int:pk>/", views.bundle_request_detail, name="bundle-request-detail"),
    path(
        "bundle-requests/<int:pk>/approve/",
        views.bundle_request_decide,
        {"decision": "approve"},
        name="bundle-request-approve",
    ),
    path(
        "bundle-requests/<int:pk>/deny/",
        views.bundle_request_decide,
        {"decision": "deny"},
        name="bundle-request-deny",
    ),
    path("delegations/", views.delegation_list, name="delegation-list"),
    path("delegations/<int:pk>/end/", views.delegation_end, name="delegation-end"),
]
