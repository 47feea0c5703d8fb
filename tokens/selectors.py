"""Reads of API tokens, scoped by viewer."""

from __future__ import annotations

from django.db.models import F, QuerySet

from accounts.policies import is_platform_admin

from .models import ApiToken
from .policies import may_manage_service_tokens


def api_tokens_for_viewer(*, viewer) -> QuerySet[ApiToken]:
    """Platform admins see every token; everyone else sees their own personal tokens."""
    qs = ApiToken.objects.select_related("user", "service")
    if is_platform_admin(viewer):
        return qs
    return qs.filter(user=viewer)


def my_api_tokens(*, viewer) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=viewer).order_by(
        F("revoked_at").desc(nulls_first=True), "-created_at", "-id"
    )


def service_tokens(*, viewer) -> QuerySet[ApiToken]:
    """Every service token, for those who manage them; nothing for anyone else."""
    if not may_manage_service_tokens(viewer):
        return ApiToken.objects.none()
    return (
        ApiToken.objects.filter(service__isnull=False)
        .select_related("service")
        .order_by(F("revoked_at").desc(nulls_first=True), "service__slug", "-created_at")
    )
