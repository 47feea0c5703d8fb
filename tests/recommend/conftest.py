"""A small Tollgate world with a decided history the model can learn: the payments team's
requests for billing:read were approved, the other team's were denied."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from access.models import AccessRequest
from accounts.models import Membership, User
from tests.access.factories import make_entitlement, make_service


def quick_user(email: str, *, team, manager=None) -> User:
    """A person who never signs in (no password hashing: these tests need many of them)."""
    user = User.objects.create(
        email=email, name=email.split("@")[0].title(), team=team, manager=manager
    )
    Membership.objects.create(team=team, user=user, role=Membership.Role.MEMBER)
    return user


@pytest.fixture
def billing(org):
    return make_service(org["search"], slug="billing")


@pytest.fixture
def read(billing):
    return make_entitlement(billing, slug="read", risk="low")


@pytest.fixture
def admin_access(billing):
    return make_entitlement(billing, slug="admin", risk="high")


@pytest.fixture
def payments_people(org, manager, requester):
    extra = [
        quick_user(f"pay{i}@example.com", team=org["payments"], manager=manager) for i in range(5)
    ]
    return [requester, *extra]


@pytest.fixture
def other_people(org, other_team_user):
    boss = quick_user("other-boss@example.com", team=org["other"])
    extra = [quick_user(f"oth{i}@example.com", team=org["other"], manager=boss) for i in range(4)]
    return [other_team_user, *extra]


def decided(principal, entitlement, status: str, *, days_ago: int = 30) -> AccessRequest:
    """A decided request written directly (test set-up: history, not the workflow)."""
    at = timezone.now() - timedelta(days=days_ago)
    return AccessRequest.objects.create(
        requester=principal,
        principal=principal,
        entitlement=entitlement,
        justification="history",
        duration_days=30,
        status=status,
        stages=[],
        created_at=at,
        decided_at=at + timedelta(hours=2),
    )


@pytest.fixture
def history(payments_people, other_people, read, admin_access):
    """60 human decisions: payments → approved, other team → denied (and one auto-approval,
    which training must ignore)."""
    for n in range(36):
        decided(payments_people[n % len(payments_people)], read, "approved", days_ago=40 + n)
    for n in range(24):
        decided(other_people[n % len(other_people)], read, "denied", days_ago=40 + n)
    auto = decided(other_people[0], read, "approved")
    AccessRequest.objects.filter(pk=auto.pk).update(auto_approval_reason="auto-approved: rule")
    return {"approved": 36, "denied": 24}


@pytest.fixture
def trained(history):
    from recommend.services import recommendation_model_train

    return recommendation_model_train()
