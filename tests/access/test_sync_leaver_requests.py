"""A leaver's open requests (made by them, or for them by someone else) are cancelled in the
leaver's transaction, one audit event each by the ``LEAVER`` system actor, and never wait in
an inbox: through the directory import and through ``user_mark_leaver``."""

from __future__ import annotations

import pytest

from access import selectors, services
from access.models import AccessRequest, Grant
from accounts import services as account_services
from accounts.directory import parse_text
from accounts.models import User
from audit.models import AuditEvent
from portal.core import locks
from portal.core.actors import DIRECTORY_IMPORT, LEAVER
from tests.access.factories import make_entitlement, make_policy, make_service
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

HEADER = "email,name,team,parent_team,manager_email,worker_type,status,start_date,end_date"


def submit(actor, ent, principal):
    return services.access_request_submit(
        actor=actor,
        principal=principal,
        entitlement=ent,
        justification="needed for the quarter close",
        duration_days=7,
    )


def cancel_events(req) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(
            target_type="access.accessrequest", target_id=str(req.pk), action="request.cancel"
        )
    )


@pytest.fixture
def open_requests(org, requester, manager, security):
    """The leaver (requester) has a request of their own and one their manager made for them
    (waiting on the manager's manager); a colleague's request is the control that stays."""
    boss = make_user("boss@example.com", team=org["payments"])
    User.objects.filter(pk=manager.pk).update(manager=boss)
    manager.refresh_from_db()
    service = make_service(org["search"])
    own = submit(requester, make_entitlement(service, slug="read"), requester)
    for_them = submit(manager, make_entitlement(service, slug="write"), requester)
    colleague = make_user("colleague@example.com", team=org["payments"], manager=manager)
    control = submit(colleague, make_entitlement(service, slug="audit"), colleague)
    return {"own": own, "for_them": for_them, "control": control, "boss": boss}


def _assert_cancelled(open_requests, *, left_by: str):
    manager_inbox = {r.pk for r in selectors.approval_inbox(viewer=open_requests["boss"])}
    for key in ("own", "for_them"):
        req = AccessRequest.objects.get(pk=open_requests[key].pk)
        assert req.status == "cancelled"
        assert req.decided_at is not None
        events = cancel_events(req)
        assert len(events) == 1
        assert events[0].actor_label == LEAVER.label
        assert events[0].after["left_by"] == left_by
        assert events[0].reason.startswith("leaver: the principal, requester@example.com")
        assert req.pk not in manager_inbox
    control = AccessRequest.objects.get(pk=open_requests["control"].pk)
    assert control.status == "pending"
    assert cancel_events(control) == []
    assert not Grant.objects.filter(principal__email="requester@example.com").exists()


def test_user_mark_leaver_cancels_the_open_requests(requester, manager, admin, open_requests):
    assert {r.pk for r in selectors.approval_inbox(viewer=manager)} == {
        open_requests["own"].pk,
        open_requests["control"].pk,
    }
    assert {r.pk for r in selectors.approval_inbox(viewer=open_requests["boss"])} == {
        open_requests["for_them"].pk
    }
    account_services.user_mark_leaver(user=requester, actor=admin, reason="left")
    _assert_cancelled(open_requests, left_by="admin@example.com")
    assert [r.pk for r in selectors.approval_inbox(viewer=manager)] == [open_requests["control"].pk]
    assert list(selectors.approval_inbox(viewer=open_requests["boss"])) == []


def test_a_leaver_who_asked_for_someone_else_has_that_request_cancelled(
    org, requester, manager, admin
):
    policy = make_policy("owner-only", [("service_owner", 1)])
    ent = make_entitlement(make_service(org["search"]), slug="read", policy=policy)
    make_user("owner@example.com", team=org["search"])
    req = submit(manager, ent, requester)  # the manager asks for a report
    account_services.user_mark_leaver(user=manager, actor=admin, reason="left")
    req.refresh_from_db()
    assert req.status == "cancelled"
    (event,) = cancel_events(req)
    assert event.actor_label == LEAVER.label
    assert event.reason.startswith("leaver: the requester, manager@example.com")


def test_the_directory_import_cancels_a_leavers_open_requests_in_its_transaction(
    org, requester, manager, open_requests
):
    line = "requester@example.com,Req,payments,platform,manager@example.com,employee,{},2021-01-01,"
    with locks.lock_trace() as taken:
        result = account_services.directory_import(
            rows=parse_text(f"{HEADER}\n{line.format('leaver')}\n"),
            full=False,
            dry_run=False,
            actor=DIRECTORY_IMPORT,
            source="hr.csv",
        )
    assert result.counts["left"] == 1
    assert locks.lock_order_violations(taken) == []
    # The prepare hook locked both open requests before anything else of access.
    assert taken[:2] == [
        ("access.AccessRequest", open_requests["own"].pk),
        ("access.AccessRequest", open_requests["for_them"].pk),
    ]
    _assert_cancelled(open_requests, left_by=DIRECTORY_IMPORT.label)
    # Cancelled before the person's own leaving event, in the same import.
    left = AuditEvent.objects.get(action="user.left", target_id=str(requester.pk))
    for key in ("own", "for_them"):
        assert cancel_events(open_requests[key])[0].seq < left.seq


def test_leaver_hooks_cancel_requests_before_revoking_grants():
    hooks = account_services.LEAVER_HOOKS
    prepare = account_services.LEAVER_PREPARE_HOOKS
    assert hooks.count(services.requests_cancel_for_leaver) == 1
    assert hooks.index(services.requests_cancel_for_leaver) < hooks.index(
        services.grants_revoke_for_leaver
    )
    assert prepare.index(services.requests_lock_for_leavers) < prepare.index(
        services.grants_lock_for_leavers
    )
