"""The unused rule on hand-built data: window, grace, freshness and coverage edges."""

from __future__ import annotations

from datetime import timedelta

import pytest

from access import services as access_services
from access.models import Grant
from portal.core.errors import ValidationError
from tests.access.factories import make_entitlement, make_service
from tests.usage.support import NOW, aged_grant, cover
from usage.rules import UnusedRule, unused_grants

pytestmark = pytest.mark.django_db


@pytest.fixture
def svc(org):
    return make_service(org["search"], "warehouse")


@pytest.fixture
def read(svc):
    return make_entitlement(svc, "read")


def unused_ids(now=NOW, **rule) -> set[int]:
    return set(
        unused_grants(now=now, rule=UnusedRule.from_settings(**rule)).values_list("pk", flat=True)
    )


@pytest.mark.sqlite
def test_window_edges(svc, read, requester, manager, other_team_user, service_owner):
    cover(svc)
    at_cutoff = aged_grant(requester, read, last_used_days=90)  # exactly the window: unused
    inside = aged_grant(manager, read, last_used_days=90 - 1 / 86400)  # 1 s inside: used
    never = aged_grant(other_team_user, read, last_used_days=None)  # never seen, data covers
    old = aged_grant(service_owner, read, last_used_days=400)
    assert unused_ids() == {at_cutoff.pk, never.pk, old.pk}
    assert inside.pk not in unused_ids()


def test_grant_must_be_older_than_the_window_and_past_grace(svc, read, requester, manager):
    cover(svc)
    young = aged_grant(requester, read, age_days=89, last_used_days=None)
    just_old = aged_grant(manager, read, age_days=90, last_used_days=None)
    assert unused_ids() == {just_old.pk}
    # a 7-day window: the 14-day grace for new grants still protects a 10-day-old grant
    Grant.objects.filter(pk=young.pk).update(starts_at=NOW - timedelta(days=10))
    Grant.objects.filter(pk=just_old.pk).update(starts_at=NOW - timedelta(days=14))
    assert unused_ids(window_days=7) == {just_old.pk}
    Grant.objects.filter(pk=just_old.pk).update(
        starts_at=NOW - timedelta(days=14) + timedelta(seconds=1)
    )
    assert unused_ids(window_days=7) == set()


def test_no_usage_data_means_never_unused(svc, read, requester):
    aged_grant(requester, read, last_used_days=None)
    aged_grant(
        requester, make_entitlement(svc, "write"), last_used_days=300
    )  # known old use, still no data for the service
    assert unused_ids() == set()


def test_stale_usage_data_means_never_unused(svc, read, requester):
    grant = aged_grant(requester, read, last_used_days=300)
    cover(svc, collected_hours_ago=49)  # older than TOLLGATE_USAGE_STALE_HOURS (48)
    assert unused_ids() == set()
    cover(svc, collected_hours_ago=47)  # a newer successful collection makes it fresh
    assert unused_ids() == {grant.pk}


def test_history_shorter_than_the_window_is_not_enough(svc, read, requester):
    grant = aged_grant(requester, read, last_used_days=None)
    cover(svc, since_days=30)  # a source connected a month ago has not seen 90 days
    assert unused_ids() == set()
    cover(svc, since_days=91)  # coverage only moves earlier
    assert unused_ids() == {grant.pk}


def test_freshness_is_per_service(org, svc, read, requester):
    other = make_service(org["search"], "crm")
    cover(other)
    aged_grant(requester, read, last_used_days=None)
    assert unused_ids() == set()


def test_only_active_grants(svc, read, requester, manager):
    cover(svc)
    aged_grant(requester, read, last_used_days=None, status="pending")
    aged_grant(manager, read, last_used_days=None, status="revoked")
    assert unused_ids() == set()


def test_settings_change_the_window(settings, svc, read, requester):
    cover(svc)
    grant = aged_grant(requester, read, last_used_days=40, age_days=60)
    assert unused_ids() == set()
    settings.TOLLGATE_UNUSED_WINDOW_DAYS = 30
    assert set(unused_grants(now=NOW).values_list("pk", flat=True)) == {grant.pk}


def test_rule_refuses_nonsense_settings():
    with pytest.raises(ValueError, match="window_days must be a positive whole number"):
        UnusedRule.from_settings(window_days=0)


# --- grants_record_use: only forward ---------------------------------------------------
@pytest.mark.sqlite
def test_record_use_only_moves_forward(svc, read, requester, manager):
    a = aged_grant(requester, read, last_used_days=10)
    b = aged_grant(manager, read, last_used_days=None)
    moved = access_services.grants_record_use(
        uses={a.pk: NOW - timedelta(days=20), b.pk: NOW - timedelta(days=5)}, source="test"
    )
    assert moved == 1
    a.refresh_from_db()
    b.refresh_from_db()
    assert a.last_used_at == NOW - timedelta(days=10)  # not moved back
    assert b.last_used_at == NOW - timedelta(days=5)
    assert access_services.grants_record_use(uses={a.pk: NOW - timedelta(days=1)}, source="t") == 1
    a.refresh_from_db()
    assert a.last_used_at == NOW - timedelta(days=1)


def test_record_use_clamps_future_and_refuses_naive_times(svc, read, requester):
    from django.utils import timezone

    grant = aged_grant(requester, read, last_used_days=None)
    access_services.grants_record_use(
        uses={grant.pk: timezone.now() + timedelta(days=3)}, source="t"
    )
    grant.refresh_from_db()
    assert grant.last_used_at <= timezone.now()
    with pytest.raises(ValidationError, match="has no time zone"):
        access_services.grants_record_use(uses={grant.pk: NOW.replace(tzinfo=None)}, source="t")


def test_record_use_in_batches(svc, read, requester, manager, other_team_user):
    grants = [
        aged_grant(p, read, last_used_days=None) for p in (requester, manager, other_team_user)
    ]
    moved = access_services.grants_record_use(
        uses={g.pk: NOW - timedelta(days=i) for i, g in enumerate(grants)},
        source="t",
        batch_size=2,
    )
    assert moved == 3
    assert [Grant.objects.get(pk=g.pk).last_used_at for g in grants] == [
        NOW - timedelta(days=i) for i in range(3)
    ]
