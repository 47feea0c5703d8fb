"""Provisioning pages: failed jobs with retry, grant jobs, manual tasks, drift, break-glass,
follow-ups and metrics. Objects the viewer may not see answer 404 and stay unchanged."""

from __future__ import annotations

import pytest

from access.models import FollowUpReview, Grant, ManualTask, ReconciliationRun, Service, SyncJob
from audit.models import AuditEvent
from connectors.fake import FakeConnector
from tests.access.factories import grant_directly, make_entitlement
from tests.access.sync_support import (
    auto_entitlement,
    fake_service,
    fresh_fakes,  # noqa: F401
    job_of,
    request_grant,
)
from tests.conftest import make_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_fakes")]


@pytest.fixture
def billing(org):
    return fake_service(org["search"], "billing")


@pytest.fixture
def failed_job(requester, billing, django_capture_on_commit_callbacks):
    FakeConnector.backend("billing").inject(permanent=1)
    ent = auto_entitlement(billing, requester)
    grant = request_grant(requester, ent, django_capture_on_commit_callbacks)
    return job_of(grant)


def test_failed_jobs_page_and_retry_for_the_platform_team(
    client, admin, failed_job, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    client.force_login(admin)
    with django_assert_max_num_queries(12):
        page = client.get("/provisioning/jobs/failed/")
    assert page.status_code == 200
    assert f'id="job-{failed_job.pk}"' in page.content.decode()
    assert client.get(f"/provisioning/jobs/{failed_job.pk}/retry/").status_code == 405
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/provisioning/jobs/{failed_job.pk}/retry/")
    assert response.status_code == 302
    failed_job.refresh_from_db()
    assert failed_job.status == "done"
    assert Grant.objects.get(pk=failed_job.grant_id).status == "active"


def test_failed_jobs_are_not_for_engineers(client, requester, failed_job):
    client.force_login(requester)
    audit_before = AuditEvent.objects.count()
    assert client.get("/provisioning/jobs/failed/").status_code == 404
    assert client.post(f"/provisioning/jobs/{failed_job.pk}/retry/").status_code == 404
    failed_job.refresh_from_db()
    assert failed_job.status == "failed"
    assert AuditEvent.objects.count() == audit_before


def test_grant_page_shows_its_sync_jobs_to_the_requester(client, requester, failed_job):
    client.force_login(requester)
    page = client.get(f"/grants/{failed_job.grant_id}/").content.decode()
    assert f'id="job-{failed_job.pk}"' in page
    assert "Failed" in page and failed_job.last_error in page


def test_manual_task_page_and_answer(client, requester, org, django_capture_on_commit_callbacks):
    desk = Service.objects.create(
        slug="desk",
        name="Desk",
        owner_team=org["search"],
        connector="manual",
        connector_config={"group": "desk-ops"},
    )
    grant = request_grant(
        requester, auto_entitlement(desk, requester), django_capture_on_commit_callbacks
    )
    task = ManualTask.objects.get(job__grant=grant)
    member = make_user("desk@example.com", roles=["desk-ops"])
    outsider = make_user("nosy@example.com")

    client.force_login(outsider)
    assert f"task-{task.pk}" not in client.get("/provisioning/tasks/").content.decode()
    response = client.post(f"/provisioning/tasks/{task.pk}/answer/", {"outcome": "done"})
    assert response.status_code == 404
    task.refresh_from_db()
    assert task.status == "open"

    client.force_login(member)
    assert f'id="task-{task.pk}"' in client.get("/provisioning/tasks/").content.decode()
    response = client.post(
        f"/provisioning/tasks/{task.pk}/answer/", {"outcome": "done", "note": "added"}
    )
    assert response.status_code == 302
    task.refresh_from_db()
    assert (task.status, Grant.objects.get(pk=grant.pk).status) == ("done", "active")


def test_drift_pages_scoped_and_reconcile_buttons(
    client, service_owner, other_team_user, security, billing, requester
):
    grant_directly(requester, make_entitlement(billing, slug="read"))
    FakeConnector.backend("billing").set_holder("ghost@example.com", "read")

    client.force_login(other_team_user)
    assert client.get("/provisioning/drift/").status_code == 404
    assert client.get("/provisioning/services/billing/").status_code == 404
    assert (
        client.post("/provisioning/services/billing/reconcile/", {"mode": "report"}).status_code
        == 404
    )
    assert ReconciliationRun.objects.count() == 0

    client.force_login(service_owner)
    page = client.post("/provisioning/services/billing/reconcile/", {"mode": "dry_run"})
    assert page.status_code == 200
    body = page.content.decode()
    assert "unmanaged holder: ghost@example.com read (member)" in body
    assert "missing downstream: requester@example.com read" in body
    assert ReconciliationRun.objects.count() == 0  # a dry run writes nothing
    assert (
        client.post("/provisioning/services/billing/reconcile/", {"mode": "report"}).status_code
        == 302
    )
    run = ReconciliationRun.objects.get()
    assert (run.mode, run.missing, run.unmanaged, run.actor_label) == (
        "report",
        1,
        1,
        "owner@example.com",
    )
    assert "ghost@example.com" in client.get("/provisioning/services/billing/").content.decode()

    client.force_login(security)
    overview = client.get("/provisioning/drift/").content.decode()
    assert "<strong>1</strong> missing downstream" in overview
    assert "<strong>1</strong> unmanaged holders" in overview


def test_break_glass_page_takes_access_and_security_answers_the_follow_up(
    client, requester, security, billing, django_capture_on_commit_callbacks
):
    ent = make_entitlement(billing, slug="admin", risk="critical", allows_break_glass=True)
    client.force_login(requester)
    assert client.get("/provisioning/break-glass/").status_code == 200
    bad = client.post(
        "/provisioning/break-glass/", {"entitlement": ent.pk, "hours": 9, "reason": "prod is down"}
    )
    assert bad.status_code == 400
    assert Grant.objects.count() == 0
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/provisioning/break-glass/",
            {"entitlement": ent.pk, "hours": 1, "reason": "prod is down INC-7"},
        )
    grant = Grant.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/grants/{grant.pk}/"
    assert (grant.status, grant.break_glass) == ("active", True)
    item = FollowUpReview.objects.get()
    # The holder has nothing to answer; security does.
    assert f"follow-up-{item.pk}" not in client.get("/provisioning/reviews/").content.decode()
    client.force_login(security)
    assert f'id="follow-up-{item.pk}"' in client.get("/provisioning/reviews/").content.decode()
    response = client.post(
        f"/provisioning/reviews/{item.pk}/answer/", {"decision": "keep", "note": "INC-7 real"}
    )
    assert response.status_code == 302
    item.refresh_from_db()
    assert item.status == "kept"


def test_metrics_count_jobs_and_drift(client, admin, requester, failed_job):
    client.force_login(requester)
    assert client.get("/provisioning/metrics").status_code == 404
    client.force_login(admin)
    text = client.get("/provisioning/metrics").content.decode()
    assert 'tollgate_sync_jobs{status="failed"} 1' in text
    assert 'tollgate_sync_jobs{status="done"} 0' in text
    assert SyncJob.objects.count() == 1


def test_hub_shows_each_persona_what_is_theirs(client, requester, admin, failed_job):
    client.force_login(requester)
    page = client.get("/provisioning/").content.decode()
    assert "Break-glass access" in page and "Failed jobs" not in page
    client.force_login(admin)
    page = client.get("/provisioning/").content.decode()
    assert "Failed jobs</a> — 1 failed" in page
