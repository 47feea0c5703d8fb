"""Suggestions (C7): each check with and without its condition on hand-built rollup rows and
grants; fingerprint dedup across runs; the life cycle; dismissed stays dismissed."""

from __future__ import annotations

import datetime as dt
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from costs.analytics import services, suggestions
from costs.analytics.models import CostResourceDaily, Suggestion
from portal.core.errors import InvalidTransition, NotPermitted, ValidationError

from ..access.factories import grant_directly, make_entitlement, make_service

pytestmark = pytest.mark.django_db
TODAY = dt.date(2026, 3, 31)


def rows(team, resource, days, *, cost=10, qty=lambda i: 24, **fields):
    """One rollup row per day for ``days`` days up to TODAY (i = days back)."""
    objs = []
    for i in range(days):
        d = TODAY - dt.timedelta(days=i)
        values = {
            "billing_period_start": d.replace(day=1),
            "day": d,
            "team": team,
            "allocation": "direct" if team else "unallocated",
            "service_name": "Amazon Elastic Compute Cloud",
            "service_category": "Compute",
            "charge_category": "Usage",
            "pricing_category": "Standard",
            "resource_id": resource,
            "tagged": True,
            "billing_currency": "USD",
            "billed_cost": Decimal(cost),
            "effective_cost": Decimal(cost),
            "list_cost": Decimal(cost),
            "consumed_quantity": Decimal(qty(i)),
            "lines": 1,
        }
        values.update(fields)
        objs.append(CostResourceDaily(**values))
    CostResourceDaily.objects.bulk_create(objs)


def kinds(check):
    return sorted((c.kind, c.resource_id) for c in check(TODAY))


def test_idle_and_orphaned(org):
    p = org["payments"]
    rows(p, "i-idle", 60, qty=lambda i: 0.1 if i < 14 else 24)
    rows(p, "i-busy", 60)
    rows(p, "vol-orphan", 60, qty=lambda i: 0, service_category="Storage")
    rows(p, "i-cheap-idle", 60, cost=Decimal("0.1"), qty=lambda i: 0)
    found = {c.resource_id: c for c in suggestions.check_idle_and_orphaned(TODAY)}
    assert sorted((c.kind, r) for r, c in found.items()) == [
        ("idle_resource", "i-idle"),
        ("orphaned_resource", "vol-orphan"),
    ]
    assert found["i-idle"].saving == Decimal("300.00") and found["i-idle"].team_id == p.pk
    assert "× 30/14" in found["i-idle"].method


def test_untagged_and_unallocated(org):
    rows(org["payments"], "i-tagged", 30)
    assert kinds(suggestions.check_untagged) == [] and kinds(suggestions.check_unallocated) == []
    rows(org["payments"], "i-untagged", 30, tagged=False)
    rows(None, "i-nobody", 30)
    assert kinds(suggestions.check_untagged) == [("untagged_spend", "")]
    [u] = suggestions.check_unallocated(TODAY)
    assert (
        u.team_id is None and u.evidence["unallocated_cost_30_days"] == "300.00" and u.saving == 0
    )


def test_commitment_checks(org):
    p, s = org["payments"], org["search"]
    rows(p, "sp", 30, cost=10, commitment_discount_status="Unused", pricing_category="Committed")
    rows(
        p, "i-covered", 30, cost=20, commitment_discount_status="Used", pricing_category="Committed"
    )
    rows(s, "i-on-demand", 30, cost=40)
    rows(p, "i-small", 30, cost=1)
    got = {(c.kind, c.team_id): c for c in suggestions.check_commitments(TODAY)}
    assert set(got) == {("low_commitment_utilisation", p.pk), ("commitment_coverage", s.pk)}
    assert got[("low_commitment_utilisation", p.pk)].saving == Decimal("300.00")
    assert got[("commitment_coverage", s.pk)].saving == Decimal("336.00")  # 40 × 30 × 28%


def test_previous_generation(org):
    rows(org["payments"], "i-old", 30, resource_type="m4.2xlarge")
    rows(org["payments"], "i-new", 30, resource_type="m7i.2xlarge")
    assert kinds(suggestions.check_previous_generation) == [("previous_generation", "i-old")]


def test_unused_paid_seats(org, requester, manager, other_team_user):
    svc = make_service(org["search"])
    paid = make_entitlement(svc, "paid", seat_cost_monthly=Decimal("25.00"))
    free = make_entitlement(svc, "free")
    long_ago = timezone.now() - timedelta(days=200)
    unused = grant_directly(requester, paid)
    recent = grant_directly(manager, paid)
    # a service without (fresh) usage data: its grants are never called unused (P4 rule)
    no_data_svc = make_service(org["search"], "no-usage-data")
    no_data = grant_directly(
        other_team_user, make_entitlement(no_data_svc, "paid", seat_cost_monthly=Decimal("25.00"))
    )
    free_grant = grant_directly(requester, free)
    from access.models import Grant
    from usage.services import coverage_mark, source_for_events

    now = timezone.now()
    coverage_mark(
        source=source_for_events("cloudtrail"),
        service_ids=[svc.pk],
        covered_since=now - timedelta(days=365),
        complete_until=now,
        attempt_at=now,
    )

    Grant.objects.filter(pk__in=[unused.pk, recent.pk, no_data.pk, free_grant.pk]).update(
        starts_at=long_ago
    )
    Grant.objects.filter(pk__in=[unused.pk, free_grant.pk]).update(
        last_used_at=timezone.now() - timedelta(days=120)
    )
    Grant.objects.filter(pk=recent.pk).update(last_used_at=timezone.now() - timedelta(days=3))
    [c] = suggestions.check_unused_seats(TODAY)
    assert (c.kind, c.team_id, c.saving) == ("unused_seat", org["payments"].pk, Decimal("25.00"))
    assert c.evidence["revoke_url"] == f"/grants/{unused.pk}/"
    Grant.objects.filter(pk=unused.pk).update(starts_at=timezone.now() - timedelta(days=10))
    assert suggestions.check_unused_seats(TODAY) == []  # a new grant gets its grace


def test_dedup_and_dismissed_stays_dismissed(org, manager, requester):
    rows(org["payments"], "vol-orphan", 60, qty=lambda i: 0, service_category="Storage")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("costs.analytics.suggestions.data_as_of", lambda today=None: TODAY)
        assert suggestions.suggestions_run()["created"] == 1
        assert suggestions.suggestions_run() == {
            "candidates": 1,
            "created": 0,
            "updated": 1,
            "kept": 0,
        }
        s = Suggestion.objects.get()
        with pytest.raises(ValidationError):
            services.suggestion_transition(
                actor=manager, suggestion_id=s.pk, action="dismiss", reason=" "
            )
        with pytest.raises(NotPermitted):
            services.suggestion_transition(actor=requester, suggestion_id=s.pk, action="accept")
        s.refresh_from_db()
        assert (
            s.status == "open"
            and AuditEvent.objects.filter(action__startswith="costs.suggestion").count() == 0
        )
        services.suggestion_transition(
            actor=manager, suggestion_id=s.pk, action="dismiss", reason="kept for DR"
        )
        assert suggestions.suggestions_run()["kept"] == 1
        s.refresh_from_db()
        assert (s.status, s.dismiss_reason) == ("dismissed", "kept for DR")
        assert Suggestion.objects.count() == 1
        with pytest.raises(InvalidTransition):
            services.suggestion_transition(actor=manager, suggestion_id=s.pk, action="resolve")


def test_life_cycle_and_realised_saving(org, manager, client):
    rows(org["payments"], "vol-orphan", 60, qty=lambda i: 0, service_category="Storage")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("costs.analytics.suggestions.data_as_of", lambda today=None: TODAY)
        suggestions.suggestions_run()
    s = Suggestion.objects.get()
    client.force_login(manager)
    assert client.post(f"/costs/suggestions/{s.pk}/accept/").status_code == 302
    assert client.post(f"/costs/suggestions/{s.pk}/resolve/").status_code == 302
    s.refresh_from_db()
    assert s.status == "resolved" and s.decided_by == manager
    # after resolution the volume is gone: no cost from the day after
    Suggestion.objects.filter(pk=s.pk).update(
        resolved_at=timezone.make_aware(dt.datetime(2026, 3, 20))
    )
    CostResourceDaily.objects.filter(
        resource_id="vol-orphan", day__gt=dt.date(2026, 3, 20)
    ).delete()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("costs.analytics.suggestions.data_as_of", lambda today=None: TODAY)
        assert suggestions.suggestions_measure_realised() == 1
    s.refresh_from_db()
    assert s.realised_monthly_saving == s.baseline_monthly_cost == Decimal("300.00")
    actions = list(
        AuditEvent.objects.filter(action__startswith="costs.suggestion").values_list(
            "action", flat=True
        )
    )
    assert actions == ["costs.suggestion_accepted", "costs.suggestion_resolved"]


def test_suggestions_api(client, org, requester, other_team_user, finance):
    rows(org["payments"], "vol-orphan", 60, qty=lambda i: 0, service_category="Storage")
    rows(None, "i-nobody", 30, service_category="Storage")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("costs.analytics.suggestions.data_as_of", lambda today=None: TODAY)
        suggestions.suggestions_run()
    client.force_login(requester)
    body = client.get("/api/v1/suggestions/?team=payments&status=open").json()
    assert body["count"] == 1
    item = body["results"][0]
    assert (item["kind"], item["team"], item["estimated_monthly_saving"]) == (
        "orphaned_resource",
        "payments",
        "300.00",
    )
    assert item["evidence"]["cost_last_14_days"] == "140.00"
    assert client.get("/api/v1/suggestions/").json()["count"] == 1  # not the unallocated one
    assert client.get("/api/v1/suggestions/?team=search").status_code == 404
    assert client.get("/api/v1/suggestions/?status=bogus").status_code == 400
    client.force_login(other_team_user)
    assert client.get("/api/v1/suggestions/?team=payments").status_code == 404
    assert client.get("/api/v1/suggestions/").json()["count"] == 0
    client.force_login(finance)
    assert client.get("/api/v1/suggestions/").json()["count"] == 2
