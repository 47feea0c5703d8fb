"""Provisioning and reconciliation against a real slapd: approving a request for an LDAP-backed
entitlement makes the membership appear in the server, revoking removes it, and reconciliation
in enforce mode repairs drift (a missing member added, an unmanaged member removed)."""

from __future__ import annotations

import pytest

from access import services
from access.models import DriftItem, Grant, Service, SyncJob
from access.sync import outbox
from access.sync.reconcile import reconcile_service
from tests.access.factories import grant_directly, make_entitlement, make_policy
from tests.conftest import make_user
from tests.connectors.ldap_support import ldap_config

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def directory_service(org, slapd):
    slapd.add_group("readers")
    return Service.objects.create(
        slug="corp-directory",
        name="Corp directory",
        owner_team=org["search"],
        connector="ldap",
        connector_config=ldap_config(slapd),
    )


def member_uids(slapd) -> list[str]:
    dns = [v for v in slapd.values(f"cn=readers,{slapd.groups}", "member") if v]
    return sorted(dn.split(",", 1)[0].removeprefix("uid=") for dn in dns)


def test_approve_adds_the_member_and_revoke_removes_it(
    slapd, directory_service, requester, manager, django_capture_on_commit_callbacks
):
    slapd.add_person("requester", mail=requester.email)
    readers = make_entitlement(
        directory_service, slug="readers", policy=make_policy("mgr", [("manager", 1)])
    )
    request = services.access_request_submit(
        actor=requester, principal=requester, entitlement=readers, justification="reports"
    )
    assert member_uids(slapd) == []

    with django_capture_on_commit_callbacks(execute=True):
        services.access_request_approve(actor=manager, request_id=request.pk, reason="ok")

    grant = Grant.objects.get(request=request)
    job = SyncJob.objects.get(grant=grant, operation="grant")
    assert (grant.status, job.status, job.changed) == ("active", "done", True)
    assert member_uids(slapd) == ["requester"]

    with django_capture_on_commit_callbacks(execute=True):
        services.grant_revoke(actor=requester, grant_id=grant.pk, reason="done")

    grant.refresh_from_db()
    assert grant.status == "revoked"
    assert SyncJob.objects.get(grant=grant, operation="revoke").status == "done"
    assert member_uids(slapd) == []


def test_reconciliation_finds_an_unmanaged_member_and_enforce_repairs_the_drift(
    slapd, directory_service, org, django_capture_on_commit_callbacks
):
    readers = make_entitlement(directory_service, slug="readers")
    ann = make_user("ann@example.com", team=org["payments"])
    bob = make_user("bob@example.com", team=org["payments"])
    for person in ("ann", "bob", "mallory"):
        slapd.add_person(person, mail=f"{person}@example.com")
    grant_directly(ann, readers)  # held in LDAP too: fine
    bob_grant = grant_directly(bob, readers)  # missing in LDAP
    conn = slapd.admin()
    try:
        conn.modify(
            f"cn=readers,{slapd.groups}",
            {
                "member": [
                    ("MODIFY_ADD", [f"uid=ann,{slapd.people}", f"uid=mallory,{slapd.people}"])
                ]
            },
        )
    finally:
        conn.unbind()
    assert member_uids(slapd) == ["ann", "mallory"]

    report = reconcile_service(service_id=directory_service.pk, mode="report")
    assert (report.status, report.missing, report.unmanaged) == ("done", 1, 1)
    assert sorted(DriftItem.objects.filter(run=report).values_list("kind", "principal_login")) == [
        ("missing", "bob"),
        ("unmanaged", "mallory"),
    ]
    assert member_uids(slapd) == ["ann", "mallory"]  # report changes nothing

    with django_capture_on_commit_callbacks(execute=True):
        run = reconcile_service(service_id=directory_service.pk, mode="enforce")

    assert run.jobs_created == 2
    assert sorted(
        SyncJob.objects.filter(origin="reconcile").values_list("operation", "status", "grant_id")
    ) == [("grant", "done", bob_grant.pk), ("revoke", "done", None)]
    assert member_uids(slapd) == ["ann", "bob"]
    again = reconcile_service(service_id=directory_service.pk, mode="report")
    assert (again.missing, again.unmanaged, again.wrong_level) == (0, 0, 0)


def test_a_stopped_server_defers_the_job_and_it_completes_once_slapd_is_back(
    slapd, directory_service, requester, manager, django_capture_on_commit_callbacks
):
    slapd.add_person("requester", mail=requester.email)
    readers = make_entitlement(
        directory_service, slug="readers", policy=make_policy("mgr", [("manager", 1)])
    )
    request = services.access_request_submit(
        actor=requester, principal=requester, entitlement=readers, justification="reports"
    )
    slapd.stop()
    try:
        with django_capture_on_commit_callbacks(execute=True):
            services.access_request_approve(actor=manager, request_id=request.pk, reason="ok")
        grant = Grant.objects.get(request=request)
        job = SyncJob.objects.get(grant=grant, operation="grant")
        assert (grant.status, job.status, job.attempts) == ("pending", "pending", 1)
        assert "unreachable" in job.last_error
        assert slapd.service_password not in job.last_error
    finally:
        slapd.restart()

    assert outbox.sync_job_run(job_id=job.pk, now=job.next_attempt_at) == "done"
    grant.refresh_from_db()
    job.refresh_from_db()
    assert (grant.status, job.status, job.attempts) == ("active", "done", 2)
    assert member_uids(slapd) == ["requester"]
