"""The periodic scan: every kind over current data, violation upsert/resolve, compliance scores."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from access.models import AccessRequest, Grant
from accounts.models import Membership
from audit.models import AuditEvent
from standards import tasks
from standards.models import ComplianceSnapshot, ScanRun, Violation
from standards.services import standards_scan
from tests.access.factories import grant_directly, make_entitlement, make_service
from tests.conftest import make_user

from .support import apply, standard

pytestmark = pytest.mark.django_db


@pytest.fixture
def vault(org):
    service = make_service(org["search"], slug="vault", tier=0)
    return {
        "service": service,
        "admin": make_entitlement(service, "admin", risk="critical", max_days=90),
        "write": make_entitlement(service, "write", risk="high", max_days=90),
        "read": make_entitlement(service, "read", risk="low", max_days=90),
    }


def open_keys(key: str | None = None) -> set[str]:
    qs = Violation.objects.filter(resolved_at__isnull=True)
    if key:
        qs = qs.filter(standard__key=key)
    return set(qs.values_list("subject_key", flat=True))


def no_end(grant):
    grant.ends_at = None
    grant.save()
    return grant


def approved_request(principal, entitlement, stages, *, auto=""):
    return AccessRequest.objects.create(
        requester=principal,
        principal=principal,
        entitlement=entitlement,
        justification="x",
        duration_days=7,
        stages=[
            {"name": k, "kind": k, "required": 1, "group_id": None, "user_ids": [], "source": "t"}
            for k in stages
        ],
        status=AccessRequest.Status.APPROVED,
        decided_at=timezone.now(),
        auto_approval_reason=auto,
    )


@pytest.mark.sqlite
def test_max_duration_in_scan(admin, requester, vault):
    apply(admin, standard("short", "max_duration_days", scope="{risk: [critical]}", days=7))
    long = grant_directly(requester, vault["admin"], days=30)
    other = make_user("b@example.com", team=requester.team)
    grant_directly(other, vault["admin"], days=7)  # exactly the limit: compliant
    grant_directly(other, vault["write"], days=90)  # out of scope
    scan = standards_scan()
    assert open_keys() == {f"grant:{long.pk}"}
    v = Violation.objects.get()
    assert v.detail == "granted for 30 days; the limit is 7"
    assert v.owner_team == vault["service"].owner_team  # owner: service-owner
    assert v.fix_url == f"/grants/{long.pk}/"
    assert (scan.standards, scan.violating, scan.opened) == (1, 1, 1)


def test_max_duration_counts_from_the_latest_approval(admin, requester, vault):
    """An extension approved today for 7 days keeps a months-old grant compliant."""
    apply(admin, standard("short", "max_duration_days", days=7))
    grant = grant_directly(requester, vault["read"], days=7)
    grant.starts_at = timezone.now() - timedelta(days=60)
    grant.request = approved_request(requester, vault["read"], ["manager"])
    grant.save()
    standards_scan()
    assert open_keys() == set()


@pytest.mark.sqlite
def test_no_standing_access_in_scan(admin, org, requester, vault):
    contractor = make_user("c@example.com", team=org["payments"], worker_type="contractor")
    apply(
        admin,
        standard(
            "contractors",
            "no_standing_access",
            owner="platform",
            scope="{worker_type: contractor}",
        ),
    )
    standing = no_end(grant_directly(contractor, vault["write"]))
    grant_directly(contractor, vault["read"], days=300)  # ends: fine without max_days
    no_end(grant_directly(requester, vault["write"]))  # an employee: out of scope
    standards_scan()
    v = Violation.objects.get()
    assert (v.subject_key, v.detail, v.owner_team) == (
        f"grant:{standing.pk}",
        "no end date",
        org["platform"],
    )


def test_no_standing_access_with_max_days(admin, org, vault):
    contractor = make_user("c@example.com", team=org["payments"], worker_type="contractor")
    apply(
        admin, standard("c", "no_standing_access", scope="{worker_type: contractor}", max_days=30)
    )
    long = grant_directly(contractor, vault["read"], days=60)
    grant_directly(contractor, vault["write"], days=20)
    standards_scan()
    assert open_keys() == {f"grant:{long.pk}"}


def test_end_date_required_above_risk_in_scan(admin, requester, vault):
    apply(admin, standard("end-date", "end_date_required_above_risk", risk="medium"))
    high = no_end(grant_directly(requester, vault["write"]))
    no_end(grant_directly(requester, vault["read"]))  # low risk: allowed to be standing
    grant_directly(requester, vault["admin"])  # ends
    standards_scan()
    assert open_keys() == {f"grant:{high.pk}"}


def test_requires_stage_in_scan(admin, requester, vault):
    apply(
        admin, standard("sec", "requires_stage", scope="{risk: [critical, high]}", stage="security")
    )
    other = make_user("b@example.com", team=requester.team)
    third = make_user("c@example.com", team=requester.team)
    without_request = grant_directly(requester, vault["admin"])
    with_security = grant_directly(other, vault["admin"])
    with_security.request = approved_request(other, vault["admin"], ["manager", "security"])
    with_security.save()
    manager_only = grant_directly(third, vault["admin"])
    manager_only.request = approved_request(third, vault["admin"], ["manager"])
    manager_only.save()
    auto = grant_directly(other, vault["write"])
    auto.request = approved_request(other, vault["write"], ["security"], auto="auto-approved")
    auto.save()
    standards_scan()
    assert open_keys() == {
        f"grant:{without_request.pk}",
        f"grant:{manager_only.pk}",
        f"grant:{auto.pk}",
    }


@pytest.mark.sqlite
def test_min_service_owners_in_scan_and_resolve(admin, org, service_owner, vault):
    apply(admin, standard("two-owners", "min_service_owners", scope="{tier: 0}", min=2))
    make_service(org["other"], slug="tier2", tier=2)  # out of scope
    standards_scan()
    v = Violation.objects.get()
    assert (v.subject_type, v.subject_id, v.detail) == (
        "service",
        vault["service"].pk,
        "0 owner(s) (active leads of team search); at least 2 required",
    )
    Membership.objects.filter(user=service_owner).update(role=Membership.Role.LEAD)
    make_user("lead2@example.com", team=org["search"], lead=True)
    standards_scan()
    v.refresh_from_db()
    assert v.resolved_at is not None
    assert open_keys() == set()


def test_inactive_leads_do_not_count_as_owners(admin, org, vault):
    apply(admin, standard("two-owners", "min_service_owners", min=2))
    make_user("l1@example.com", team=org["search"], lead=True)
    make_user("l2@example.com", team=org["search"], lead=True, is_active=False)
    standards_scan()
    assert open_keys() == {f"service:{vault['service'].pk}"}


def test_entitlement_owner_and_cost_in_scan(admin, org, vault):
    apply(
        admin, standard("cost", "entitlement_has_owner_and_cost", scope="{risk: [low, critical]}")
    )
    make_user("lead@example.com", team=org["search"], lead=True)
    vault["admin"].seat_cost_monthly = 50
    vault["admin"].save()
    standards_scan()
    assert open_keys() == {f"entitlement:{vault['read'].pk}"}
    assert Violation.objects.get().detail == "no seat cost"


def test_sod_pairs_in_scan(admin, requester, vault):
    apply(admin, standard("mc", "sod_pairs", pairs="[[vault/admin, vault/write]]"))
    grant_directly(requester, vault["admin"])
    second = grant_directly(requester, vault["write"])
    other = make_user("b@example.com", team=requester.team)
    grant_directly(other, vault["admin"])
    standards_scan()
    v = Violation.objects.get()
    assert (v.subject_type, v.subject_id, v.subject_label) == (
        "user",
        requester.pk,
        requester.email,
    )
    assert v.subject_key == f"user:{requester.pk}:vault/admin+vault/write"
    assert v.fix_url == f"/grants/{second.pk}/"
    assert v.detail == "holds both vault/admin and vault/write"


def test_upsert_keeps_first_seen_and_resolves_and_reopens(admin, requester, vault):
    apply(admin, standard("end-date", "end_date_required_above_risk", risk="medium"))
    grant = no_end(grant_directly(requester, vault["write"]))
    t0 = timezone.now() - timedelta(hours=2)
    standards_scan(now=t0)
    t1 = timezone.now() - timedelta(hours=1)
    standards_scan(now=t1)
    v = Violation.objects.get()
    assert (v.first_seen, v.last_seen, v.resolved_at) == (t0, t1, None)
    grant.ends_at = timezone.now() + timedelta(days=3)
    grant.save()
    t2 = timezone.now()
    scan = standards_scan(now=t2)
    v.refresh_from_db()
    assert v.resolved_at == t2 and v.last_seen == t1
    assert (scan.opened, scan.resolved) == (0, 1)
    no_end(grant)
    standards_scan()
    assert Violation.objects.count() == 2  # a recurrence is a new record
    assert Violation.objects.filter(resolved_at__isnull=True).count() == 1


def test_revoked_grants_are_not_violations(admin, requester, vault):
    apply(admin, standard("end-date", "end_date_required_above_risk", risk="medium"))
    grant = no_end(grant_directly(requester, vault["write"]))
    standards_scan()
    Grant.objects.filter(pk=grant.pk).update(status=Grant.Status.REVOKED)
    standards_scan()
    assert open_keys() == set()


def test_removing_a_standard_resolves_its_violations(admin, requester, vault):
    apply(admin, standard("end-date", "end_date_required_above_risk", risk="medium"))
    no_end(grant_directly(requester, vault["write"]))
    standards_scan()
    apply(admin, standard("short", "max_duration_days", scope="{tier: 3}", days=7))
    standards_scan()
    assert Violation.objects.get().resolved_at is not None


def test_scan_audits_once(admin, requester, vault):
    apply(admin, standard("end-date", "end_date_required_above_risk", risk="medium"))
    no_end(grant_directly(requester, vault["write"]))
    before = AuditEvent.objects.count()
    standards_scan()
    event = AuditEvent.objects.get(action="standards.scan_completed")
    assert AuditEvent.objects.count() == before + 1
    assert (event.after["opened"], event.after["violating"]) == (1, 1)


@pytest.mark.sqlite
def test_compliance_scores_per_service_team_and_org(admin, org, requester, vault):
    other_service = make_service(org["other"], slug="wiki", tier=2)
    wiki = make_entitlement(other_service, "edit", risk="high")
    apply(
        admin,
        standard("end-date", "end_date_required_above_risk", risk="medium")
        + standard("short", "max_duration_days", scope="{risk: [critical]}", days=7),
    )
    # vault: 4 grants in the population (write x2, admin x2); one violates both rules.
    bad = no_end(grant_directly(requester, vault["admin"]))
    other = make_user("b@example.com", team=requester.team)
    grant_directly(other, vault["admin"], days=7)
    no_end(grant_directly(other, vault["write"]))
    grant_directly(requester, vault["write"])
    grant_directly(requester, vault["read"])  # low risk, not critical: no rule looks at it
    grant_directly(requester, wiki)  # wiki: 1 grant, compliant
    scan = standards_scan()
    snaps = {
        (s.kind, s.team_id, s.service_id): (s.subjects, s.compliant)
        for s in ComplianceSnapshot.objects.filter(scan=scan)
    }
    assert snaps == {
        ("service", None, vault["service"].pk): (4, 2),
        ("service", None, other_service.pk): (1, 1),
        ("team", org["search"].pk, None): (4, 2),
        ("team", org["other"].pk, None): (1, 1),
        ("org", None, None): (5, 3),
    }
    assert bad.pk in set(Violation.objects.values_list("subject_id", flat=True))
    assert ComplianceSnapshot.objects.get(scan=scan, kind="org").score == 60.0


def test_scan_query_count_does_not_grow_with_grants(admin, org, vault):
    apply(
        admin,
        standard("end-date", "end_date_required_above_risk", risk="medium")
        + standard("two-owners", "min_service_owners", min=2)
        + standard("cost", "entitlement_has_owner_and_cost"),
    )

    def add_people(n, prefix):
        for i in range(n):
            person = make_user(f"{prefix}{i}@example.com", team=org["payments"])
            no_end(grant_directly(person, vault["write"]))

    add_people(3, "a")
    standards_scan()
    add_people(1, "b")
    with CaptureQueriesContext(connection) as small:
        standards_scan()
    add_people(12, "c")
    with CaptureQueriesContext(connection) as large:
        standards_scan()
    assert len(large) == len(small)
    assert Violation.objects.filter(resolved_at__isnull=True, subject_type="grant").count() == 16


def test_beat_task_skips_when_another_scan_holds_the_lock(admin, requester, vault, monkeypatch):
    from contextlib import contextmanager

    apply(admin, standard("end-date", "end_date_required_above_risk", risk="medium"))

    @contextmanager
    def held(name):
        assert name == "standards.scan"
        yield False

    monkeypatch.setattr(tasks, "advisory_lock", held)
    tasks.standards_scan.delay()
    assert ScanRun.objects.count() == 0
    monkeypatch.undo()
    tasks.standards_scan.delay()
    assert ScanRun.objects.get().status == ScanRun.Status.DONE
