"""Helpers for the provisioning tests (tests/access/test_sync_*.py)."""

from __future__ import annotations

import pytest

from access import services
from access.models import Grant, Service, SyncJob
from audit.models import AuditEvent
from connectors.fake import FakeConnector
from tests.access.factories import make_entitlement, make_policy


@pytest.fixture
def fresh_fakes():
    FakeConnector.reset_all()
    yield
    FakeConnector.reset_all()


def fake_service(owner_team, slug: str = "billing", **config) -> Service:
    return Service.objects.create(
        slug=slug,
        name=slug.title(),
        owner_team=owner_team,
        connector="fake",
        connector_config={"namespace": slug, **config},
    )


def auto_entitlement(service, principal, slug: str = "read", **extra):
    """An entitlement whose policy auto-approves ``principal`` (allow list)."""
    policy = make_policy(f"auto-{service.slug}-{slug}", [("manager", 1)])
    policy.auto_approve_users.add(principal)
    return make_entitlement(service, slug=slug, policy=policy, **extra)


def request_grant(principal, entitlement, capture, *, execute: bool = True) -> Grant:
    """Submit an auto-approved request; run the on_commit callbacks when ``execute``."""
    with capture(execute=execute):
        services.access_request_submit(
            actor=principal,
            principal=principal,
            entitlement=entitlement,
            justification="needed for the quarter close",
        )
    return Grant.objects.get(principal=principal, entitlement=entitlement)


def actions_for(obj) -> list[str]:
    return list(
        AuditEvent.objects.filter(target_type=obj._meta.label_lower, target_id=str(obj.pk))
        .order_by("seq")
        .values_list("action", flat=True)
    )


def job_of(grant: Grant, operation: str = "grant") -> SyncJob:
    return SyncJob.objects.get(grant=grant, operation=operation)
