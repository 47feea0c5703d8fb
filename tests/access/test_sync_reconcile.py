"""Reconciliation: report, dry run, enforce, and two runs at once."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from access.models import DriftItem, ReconciliationRun, SyncJob
from access.sync.reconcile import reconcile_service
from audit.models import AuditEvent
from connectors.fake import FakeConnector
from tests.access.factories import grant_directly, make_entitlement
from tests.access.sync_support import fake_service, fresh_fakes  # noqa: F401
from tests.conftest import make_user

pytestmark = [pytest.mark.usefixtures("fresh_fakes")]


@pytest.fixture
def setup(org):
    service = fake_service(org["search"], "billing")
    read = make_entitlement(service, slug="read")
    ann = make_user("ann@example.com", team=org["payments"])
    bob = make_user("bob@example.com", team=org["payments"])
    cat = make_user("cat@example.com", team=org["payments"])
    backend = FakeConnector.backend("billing")
    grants = {
        "ann": grant_directly(ann, read),  # held downstream: fine
        "bob": grant_directly(bob, read),  # missing downstream
        "cat": grant_directly(cat, read),  # held with admin: wrong level
    }
    backend.set_holder("ann@example.com", "read")
    backend.set_holder("cat@example.com", "read", level="admin")
    backend.set_holder("stranger@example.com", "read")  # unmanaged
    backend.set_holder("someone@example.com", "not-ours")  # not an entitlement of the service
    return service, grants, backend


@pytest.mark.django_db
def test_report_records_exactly_the_drift(setup):
    service, grants, backend = setup
    run = reconcile_service(service_id=service.pk, mode="report")
    assert (run.status, run.grants_checked, run.holders_seen) == ("done", 3, 3)
    assert (run.missing, run.unmanaged, run.wrong_level, run.jobs_created) == (1, 1, 1, 0)
    items = sorted(DriftItem.objects.values_list("kind", "principal_login", "grant_id"))
    assert items == [
        ("missing", "bob@example.com", grants["bob"].pk),
        ("unmanaged", "stranger@example.com", None),
        ("wrong_level", "cat@example.com", grants["cat"].pk),
    ]
    assert SyncJob.objects.count() == 0
    assert backend.calls_for("grant") == backend.calls_for("revoke") == []


@pytest.mark.django_db
def test_dry_run_prints_the_plan_and_writes_nothing(setup):
    service, grants, backend = setup
    audit_before = AuditEvent.objects.count()
    plan = reconcile_service(service_id=service.pk, mode="enforce", dry_run=True)
    assert plan.lines() == [
        f"missing downstream: bob@example.com read (grant #{grants['bob'].pk})",
        "unmanaged holder: stranger@example.com read (member)",
        f"wrong level: cat@example.com read expected member got admin (grant #{grants['cat'].pk})",
    ]
    assert ReconciliationRun.objects.count() == DriftItem.objects.count() == 0
    assert AuditEvent.objects.count() == audit_before


@pytest.mark.django_db
def test_enforce_regrants_missing_and_revokes_unmanaged_through_the_outbox(
    setup, django_capture_on_commit_callbacks
):
    service, grants, backend = setup
    with django_capture_on_commit_callbacks(execute=True):
        run = reconcile_service(service_id=service.pk, mode="enforce")
    assert run.jobs_created == 2
    jobs = sorted(SyncJob.objects.values_list("operation", "origin", "status", "grant_id"))
    assert jobs == [
        ("grant", "reconcile", "done", grants["bob"].pk),
        ("revoke", "reconcile", "done", None),
    ]
    assert backend.holds("bob@example.com", "read")
    assert not backend.holds("stranger@example.com", "read")
    # The wrong level is for a person to judge; the next run finds only that.
    again = reconcile_service(service_id=service.pk, mode="enforce")
    assert (again.missing, again.unmanaged, again.wrong_level, again.jobs_created) == (0, 0, 1, 0)


@pytest.mark.django_db(transaction=True)
def test_two_runs_started_together_one_runs_one_skips(org):
    assert connection.vendor == "postgresql"
    service = fake_service(org["search"], "slowdb", delay_ms=400)
    read = make_entitlement(service, slug="read")
    for i in range(3):
        grant_directly(make_user(f"u{i}@example.com"), read)
    FakeConnector.backend("slowdb").set_holder("intruder@example.com", "read")
    results: list = []
    barrier = threading.Barrier(2)

    def run():
        from django.db import connections

        try:
            barrier.wait()
            results.append(reconcile_service(service_id=service.pk, mode="enforce"))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    ran = [r for r in results if r is not None]
    assert len(results) == 2 and len(ran) == 1
    assert ReconciliationRun.objects.count() == 1
    # Three missing re-grants and one revoke: never two revokes of the intruder.
    assert SyncJob.objects.filter(operation="revoke").count() == 1
    assert SyncJob.objects.filter(operation="grant").count() == 3
