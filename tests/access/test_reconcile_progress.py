"""Reconciliation progress: a run is visible while it compares (grants found downstream of
all active grants, holders read, drift so far), the service's page polls a partial that
updates without reloading, and the run ends done (its counts) or failed (why)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from access.models import ReconciliationRun
from access.services.reconciliation import reconcile_run_start, reconcile_service
from audit.models import AuditEvent
from connectors.fake import FakeConnector
from connectors.registry import get_connector
from tests.access.factories import grant_directly, make_entitlement
from tests.access.sync_support import fake_service, fresh_fakes  # noqa: F401
from tests.conftest import make_user

pytestmark = [pytest.mark.usefixtures("fresh_fakes"), pytest.mark.django_db]

PAGE = "/provisioning/services/billing/"


def progress_url(run) -> str:
    return f"{PAGE}reconcile/{run.pk}/progress/"


@pytest.fixture
def billing(org):
    service = fake_service(org["search"], "billing")
    read = make_entitlement(service, slug="read")
    for name in ("ann", "bob", "cat"):
        grant_directly(make_user(f"{name}@example.com", team=org["payments"]), read)
    backend = FakeConnector.backend("billing")
    backend.set_holder("ann@example.com", "read")  # held: fine
    backend.set_holder("cat@example.com", "read", level="admin")  # wrong level
    backend.set_holder("stranger@example.com", "read")  # unmanaged
    # bob@example.com is missing downstream
    return service


class Watched:
    """The service's real (fake) connector; after each holder it hands out, the test's
    browser polls the progress partial, as the page does every second."""

    def __init__(self, service, poll):
        self._inner = get_connector(service.connector, service.connector_config)
        self._poll = poll

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def iter_holders(self, entitlement=None, *, page_size=500):
        for holder in self._inner.iter_holders(entitlement, page_size=page_size):
            yield holder
            self._poll()


def counts(html: str) -> str:
    match = re.search(r'<span id="reconcile-counts">(.*?)</span>', html, re.S)
    assert match, html
    return " ".join(match.group(1).split())


def test_the_bar_moves_while_the_run_compares_and_ends_done(client, service_owner, billing):
    client.force_login(service_owner)
    run = reconcile_run_start(service_id=billing.pk, mode="report", actor=service_owner)
    first = client.get(PAGE).content.decode()
    assert 'hx-get="' + progress_url(run) + '" hx-trigger="every 1s"' in first
    assert counts(first) == (
        "0 of 3 active grants found downstream · 0 holders read · drift so far: 0"
    )

    polls: list[str] = []

    def poll():
        response = client.get(progress_url(run), HTTP_HX_REQUEST="true")
        assert response.status_code == 200 and "HX-Refresh" not in response
        polls.append(response.content.decode())

    done = reconcile_service(
        service_id=billing.pk,
        mode="report",
        actor=service_owner,
        run_id=run.pk,
        connector=Watched(billing, poll),
        page_size=1,
    )
    assert done.pk == run.pk and done.status == "done"
    # Holders come sorted (read/ann, read/cat, read/stranger); each poll sees the counts
    # written before the holder just handed out was compared.
    assert [counts(html) for html in polls] == [
        "0 of 3 active grants found downstream · 0 holders read · drift so far: 0",
        "1 of 3 active grants found downstream · 1 holders read · drift so far: 0",
        "2 of 3 active grants found downstream · 2 holders read · drift so far: 1",
    ]
    assert all('hx-trigger="every 1s"' in html and "Running" in html for html in polls)
    assert all(
        re.search(r'<progress value="\d" max="3"', html) for html in polls
    )  # a bar with counts

    end = client.get(progress_url(run), HTTP_HX_REQUEST="true")
    assert end["HX-Refresh"] == "true"  # the page reloads once, with the drift table
    html = end.content.decode()
    assert "hx-trigger" not in html and ">Done<" in html
    assert counts(html) == (
        "3 active grants checked · 3 holders read · drift: 3 "
        "(1 missing, 1 unmanaged, 1 wrong level)"
    )
    page = client.get(PAGE).content.decode()
    assert "hx-trigger" not in page and "stranger@example.com" in page
    assert (
        AuditEvent.objects.filter(action="reconciliation.run", target_id=str(run.pk)).count() == 1
    )


def test_a_run_that_fails_says_why_and_stops_polling(client, service_owner, billing):
    FakeConnector.backend("billing").inject(permanent=1, operations=["list_holders"])
    client.force_login(service_owner)
    response = client.post(f"{PAGE}reconcile/", {"mode": "report"})
    assert response.status_code == 302
    run = ReconciliationRun.objects.get()
    assert (run.status, run.actor_label) == ("failed", "owner@example.com")
    assert "injected permanent failure of list_holders" in run.error

    html = client.get(progress_url(run), HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in html and ">Failed<" in html
    assert "injected permanent failure of list_holders" in html
    assert "injected permanent failure of list_holders" in client.get(PAGE).content.decode()
    event = AuditEvent.objects.get(action="reconciliation.run", target_id=str(run.pk))
    assert event.after["status"] == "failed"


def test_a_run_whose_worker_stopped_ends_instead_of_polling_forever(client, service_owner, billing):
    run = reconcile_run_start(service_id=billing.pk, mode="report", actor=service_owner)
    ReconciliationRun.objects.filter(pk=run.pk).update(
        started_at=timezone.now() - timedelta(hours=3)
    )
    client.force_login(service_owner)
    html = client.get(progress_url(run)).content.decode()
    assert "hx-trigger" not in html and ">Failed<" in html
    assert "the worker running it stopped" in html


def test_progress_is_not_shown_to_people_who_may_not_see_the_service(
    client, service_owner, other_team_user, billing
):
    run = reconcile_run_start(service_id=billing.pk, mode="report", actor=service_owner)
    assert client.get(progress_url(run)).status_code == 302  # sign in first
    client.force_login(other_team_user)
    assert client.get(progress_url(run)).status_code == 404
    client.force_login(service_owner)
    assert client.get(f"{PAGE}reconcile/{run.pk + 1000}/progress/").status_code == 404
    assert client.post(progress_url(run)).status_code == 405


def test_only_people_who_may_reconcile_start_a_run(other_team_user, billing):
    from portal.core.errors import NotPermitted

    with pytest.raises(NotPermitted):
        reconcile_run_start(service_id=billing.pk, mode="report", actor=other_team_user)
    assert ReconciliationRun.objects.count() == 0
