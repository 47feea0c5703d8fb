"""P2 mining runs: the Celery task reports progress and stores an exact cover; pages poll."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from patterns import services
from patterns.mining import verify_cover
from patterns.models import MiningProposal, MiningRun
from portal.core.errors import NotPermitted, ValidationError
from tests.queue_helpers import enqueued_task_names

from .support import catalog, give, people

# Three overlapping roles: {a,b,c} x {read, logs}, {c,d} x {read, deploy}, {e} x {admin}
MATRIX = {
    0: ["read", "logs"],
    1: ["read", "logs"],
    2: ["read", "logs", "deploy"],
    3: ["read", "deploy"],
    4: ["admin"],
}


@pytest.fixture
def mined_team(org):
    _, ents = catalog(org["search"])
    team = people(org["payments"], 5)
    give({team[i]: slugs for i, slugs in MATRIX.items()}, ents)
    return team, ents


@pytest.fixture
def start(django_capture_on_commit_callbacks):
    """mining_run_create, then the on-commit callback that enqueues the (eager) task."""

    def run(**kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            created = services.mining_run_create(**kwargs)
        created.refresh_from_db()
        return created

    return run


def _pairs(run):
    return {(str(u), str(e)) for u, e in services.mining_assignments(run)}


@pytest.mark.sqlite
@pytest.mark.django_db
def test_a_run_is_queued_run_by_the_task_and_stores_an_exact_cover(admin, org, mined_team, start):
    team, ents = mined_team
    seen = []
    original = services._progress_writer

    def spy(run_id):
        write = original(run_id)

        def record(fraction, message):
            write(fraction, message)
            seen.append(MiningRun.objects.values_list("status", "progress").get(pk=run_id))

        return record

    services._progress_writer = spy
    try:
        run = start(actor=admin, team=org["payments"], time_limit=5)
    finally:
        services._progress_writer = original

    run.refresh_from_db()
    assert run.status == MiningRun.Status.DONE
    assert run.progress == 1.0
    # progress was written while running, moving forward, below 1 until the end
    assert seen and all(status == "running" for status, _ in seen)
    assert 0 < seen[0][1] < 1
    proposals = list(run.proposals.order_by("index"))
    roles = [([str(u) for u in p.user_ids], [str(e) for e in p.entitlement_ids]) for p in proposals]
    assert verify_cover(_pairs(run), roles) == []
    assert len(proposals) == 3 == run.stats["roles"] == run.stats["lower_bound"]
    assert run.stats["exact"] is True and run.stats["optimal"] is True
    assert {p.cells for p in proposals} == {6, 4, 1}
    assert [p.cells for p in proposals] == sorted((p.cells for p in proposals), reverse=True)
    actions = list(
        AuditEvent.objects.filter(target_type="patterns.miningrun", target_id=str(run.pk))
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == [
        "patterns.mining_run_created",
        "patterns.mining_run_start",
        "patterns.mining_run_finish",
    ]


@pytest.mark.django_db
def test_the_task_is_enqueued_after_commit_only(
    admin, org, mined_team, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run = services.mining_run_create(actor=admin, team=org["payments"])
    assert run.status == MiningRun.Status.QUEUED
    assert enqueued_task_names(callbacks) == ["patterns.tasks.run_mining"]
    assert not run.proposals.exists()  # nothing ran before the commit


@pytest.mark.django_db
def test_an_empty_scope_fails_visibly(admin, org, start):
    run = start(actor=admin, team=org["search"])
    assert run.status == MiningRun.Status.FAILED
    assert run.error == "nobody in this scope holds any active access"
    assert not MiningProposal.objects.exists()


@pytest.mark.django_db
def test_a_redelivered_task_does_nothing_twice(admin, org, mined_team, start):
    run = start(actor=admin, team=org["payments"])
    assert run.status == MiningRun.Status.DONE
    count = MiningProposal.objects.count()
    services.mining_run_execute(run_id=run.pk)
    assert MiningProposal.objects.count() == count


@pytest.mark.django_db
def test_only_admins_and_security_start_runs_and_bad_input_is_named(
    manager, security, org, mined_team
):
    with pytest.raises(NotPermitted):
        services.mining_run_create(actor=manager, team=org["payments"])
    with pytest.raises(ValidationError) as exc:
        services.mining_run_create(actor=security, team=org["payments"], time_limit=0)
    assert exc.value.field == "time_limit"
    with pytest.raises(ValidationError) as exc:
        services.mining_run_create(actor=security)
    assert exc.value.field == "scope"
    assert not MiningRun.objects.exists()


@pytest.mark.django_db
def test_service_scope_mines_the_services_holders(admin, org, mined_team, start):
    from access.models import Service

    run = start(actor=admin, service=Service.objects.get(slug="pay-db"))
    assert run.status == MiningRun.Status.DONE
    assert run.stats["assignments"] == 10


@pytest.mark.django_db
def test_run_pages_progress_polling_and_persona_scoping(
    client, admin, requester, other_team_user, org, mined_team
):
    run = services.mining_run_create(actor=admin, team=org["payments"])
    MiningRun.objects.filter(pk=run.pk).update(status="running", progress=0.4, message="greedy")

    client.force_login(requester)  # a payments member sees the payments run
    page = client.get(f"/patterns/runs/{run.pk}/")
    assert page.status_code == 200
    assert f'hx-get="/patterns/runs/{run.pk}/progress/"' in page.content.decode()
    poll = client.get(f"/patterns/runs/{run.pk}/progress/", headers={"HX-Request": "true"})
    assert poll.status_code == 200 and "40%" in poll.content.decode()
    assert "HX-Refresh" not in poll

    MiningRun.objects.filter(pk=run.pk).update(status="done", progress=1.0)
    poll = client.get(f"/patterns/runs/{run.pk}/progress/", headers={"HX-Request": "true"})
    assert poll["HX-Refresh"] == "true"
    assert 'hx-trigger="every 1s"' not in poll.content.decode()

    client.force_login(other_team_user)
    assert client.get(f"/patterns/runs/{run.pk}/").status_code == 404
    assert client.get(f"/patterns/runs/{run.pk}/progress/").status_code == 404


@pytest.mark.django_db
def test_run_form_starts_a_run_for_admins_and_is_refused_to_others(
    client, admin, requester, org, mined_team, django_capture_on_commit_callbacks
):
    client.force_login(requester)
    assert (
        client.post(
            "/patterns/runs/", {"scope": "team", "team": "payments", "time_limit": 5}
        ).status_code
        == 403
    )
    assert not MiningRun.objects.exists()

    client.force_login(admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/patterns/runs/", {"scope": "team", "team": "payments", "time_limit": 5}
        )
    run = MiningRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/patterns/runs/{run.pk}/"
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert "Proposal 1" in page.content.decode()
    assert f"/patterns/runs/{run.pk}/proposals/1/adopt/" in page.content.decode()


@pytest.mark.sqlite
@pytest.mark.django_db
def test_the_sweeper_fails_lost_runs_and_resends_lost_messages(
    admin, org, mined_team, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    with django_capture_on_commit_callbacks(execute=False):  # the message is "lost"
        lost_message = services.mining_run_create(actor=admin, team=org["payments"])
    with django_capture_on_commit_callbacks(execute=False):
        lost_worker = services.mining_run_create(actor=admin, team=org["payments"])
    now = timezone.now()
    MiningRun.objects.filter(pk=lost_worker.pk).update(
        status=MiningRun.Status.RUNNING, started_at=now - timedelta(minutes=2)
    )
    # Young runs are left alone: the worker may still be mining, the message still queued.
    assert services.mining_runs_sweep(now=now) == {"failed": 0, "requeued": 0}

    later = now + timedelta(seconds=lost_worker.time_limit) + timedelta(minutes=11)
    assert services.mining_runs_sweep(now=later) == {"failed": 1, "requeued": 1}
    lost_worker.refresh_from_db()
    lost_message.refresh_from_db()
    assert lost_worker.status == MiningRun.Status.FAILED
    assert "worker running it was lost" in lost_worker.error
    assert lost_message.status == MiningRun.Status.DONE  # re-sent, and ran (eager Celery)
    assert lost_message.proposals.exists()
    assert AuditEvent.objects.filter(
        action="patterns.mining_run_fail", target_id=str(lost_worker.pk)
    ).exists()
    # Idempotent: nothing left to do.
    assert services.mining_runs_sweep(now=later) == {"failed": 0, "requeued": 0}
