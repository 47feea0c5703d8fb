"""Concurrency on PostgreSQL: decisions lock the request row, re-check after
the lock and answer Conflict when it was already decided. Real threads, real connections."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import pytest
from django.contrib.auth.hashers import make_password
from django.db import connection

from access import services
from access.models import AccessRequest, Approval, Grant
from accounts.models import User
from audit.models import AuditEvent
from audit.verify import verify_chain
from portal.core.errors import DomainError

from .factories import make_entitlement, make_policy, make_service

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("concurrency")]


def run_together(calls: list[Callable[[], object]]) -> list[str]:
    """Run every call in its own thread, released at once; return each outcome's name."""
    assert connection.vendor == "postgresql", "concurrency tests need PostgreSQL (DATABASE_URL)"
    barrier = threading.Barrier(len(calls))
    outcomes: list[str] = [""] * len(calls)

    def work(i: int, call: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=30)
            call()
            outcomes[i] = "ok"
        except DomainError as exc:
            outcomes[i] = type(exc).__name__
        except Exception as exc:  # noqa: BLE001 - any other error fails the test below
            outcomes[i] = f"error: {type(exc).__name__}: {exc}"
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(i, call)) for i, call in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    return outcomes


def bulk_users(prefix: str, n: int, team, manager=None) -> list[User]:
    password = make_password(None)
    User.objects.bulk_create(
        [
            User(
                email=f"{prefix}{i}@example.com",
                name=f"{prefix} {i}",
                team=team,
                manager=manager,
                password=password,
            )
            for i in range(n)
        ]
    )
    return list(User.objects.filter(email__startswith=prefix).order_by("pk"))


def request_events(req, action: str) -> int:
    return AuditEvent.objects.filter(
        target_type="access.accessrequest", target_id=str(req.pk), action=action
    ).count()


def test_fifty_owners_approving_at_once_make_exactly_one_grant(org, requester):
    owners = bulk_users("owner", 50, org["search"])
    ent = make_entitlement(
        make_service(org["search"]), policy=make_policy("owners", [("service_owner", 1)])
    )
    req = services.access_request_submit(
        actor=requester, principal=requester, entitlement=ent, justification="x", duration_days=3
    )

    outcomes = run_together(
        [
            lambda o=o: services.access_request_approve(actor=o, request_id=req.pk, reason="ok")
            for o in owners
        ]
    )

    assert Counter(outcomes) == {"ok": 1, "Conflict": 49}
    req.refresh_from_db()
    assert req.status == "approved"
    assert Grant.objects.filter(principal=requester, entitlement=ent).count() == 1
    assert Approval.objects.filter(request=req).count() == 1
    assert request_events(req, "request.approve") == 1
    assert request_events(req, "request.approval_given") == 1
    grant = Grant.objects.get(request=req)
    assert (
        AuditEvent.objects.filter(
            target_type="access.grant", target_id=str(grant.pk), action="grant.created"
        ).count()
        == 1
    )
    result = verify_chain()
    assert result.ok, result.broken


def test_the_same_approver_fifty_times_at_once_approves_once(org, requester, manager):
    ent = make_entitlement(make_service(org["search"]), policy=make_policy("mgr", [("manager", 1)]))
    req = services.access_request_submit(
        actor=requester, principal=requester, entitlement=ent, justification="x", duration_days=3
    )

    outcomes = run_together(
        [lambda: services.access_request_approve(actor=manager, request_id=req.pk)] * 50
    )

    assert Counter(outcomes) == {"ok": 1, "Conflict": 49}
    assert Grant.objects.filter(request=req).count() == 1
    assert Approval.objects.filter(request=req).count() == 1
    assert request_events(req, "request.approve") == 1
    assert verify_chain().ok


def test_concurrent_approve_and_deny_end_in_one_decision(org, requester):
    owners = bulk_users("owner", 20, org["search"])
    ent = make_entitlement(
        make_service(org["search"]), policy=make_policy("owners", [("service_owner", 1)])
    )
    req = services.access_request_submit(
        actor=requester, principal=requester, entitlement=ent, justification="x", duration_days=3
    )
    calls = [
        (lambda o=o: services.access_request_approve(actor=o, request_id=req.pk))
        if i % 2
        else (lambda o=o: services.access_request_deny(actor=o, request_id=req.pk, reason="no"))
        for i, o in enumerate(owners)
    ]
    outcomes = run_together(calls)
    assert Counter(outcomes) == {"ok": 1, "Conflict": 19}
    req.refresh_from_db()
    decided = request_events(req, "request.approve") + request_events(req, "request.deny")
    assert decided == 1
    assert Grant.objects.filter(request=req).count() == (1 if req.status == "approved" else 0)
    assert Approval.objects.filter(request=req).count() == 1


def test_a_double_submit_makes_one_request(org, requester, manager):
    service = make_service(org["search"])
    policy = make_policy("mgr", [("manager", 1)])
    for n in range(5):
        ent = make_entitlement(service, slug=f"e{n}", policy=policy)

        def submit(ent=ent):
            return services.access_request_submit(
                actor=requester,
                principal=requester,
                entitlement=ent,
                justification="double click",
                duration_days=3,
            )

        outcomes = run_together([submit, submit])
        assert sorted(outcomes) == ["Conflict", "ok"]
        assert AccessRequest.objects.filter(principal=requester, entitlement=ent).count() == 1
        assert (
            AuditEvent.objects.filter(
                action="request.submitted", after__entitlement=str(ent)
            ).count()
            == 1
        )


def test_submits_and_approvals_for_one_principal_do_not_deadlock(org, requester, manager):
    """Approvals insert grants that reference the principal while new submissions lock the
    principal; both also append to the audit chain. Neither may deadlock the other."""
    service = make_service(org["search"])
    policy = make_policy("mgr", [("manager", 1)])
    pending = [
        services.access_request_submit(
            actor=requester,
            principal=requester,
            entitlement=make_entitlement(service, slug=f"p{n}", policy=policy),
            justification="x",
            duration_days=3,
        )
        for n in range(10)
    ]
    fresh = [make_entitlement(service, slug=f"f{n}", policy=policy) for n in range(10)]
    calls = [
        lambda r=r: services.access_request_approve(actor=manager, request_id=r.pk) for r in pending
    ]
    calls += [
        lambda e=e: services.access_request_submit(
            actor=requester, principal=requester, entitlement=e, justification="x", duration_days=3
        )
        for e in fresh
    ]
    outcomes = run_together(calls)
    assert outcomes == ["ok"] * 20
    assert Grant.objects.filter(principal=requester, status="active").count() == 10
    assert AccessRequest.objects.filter(principal=requester, status="pending").count() == 10
    assert verify_chain().ok


def test_revoking_a_grant_while_its_extension_is_approved_does_not_deadlock(
    org, requester, manager
):
    service = make_service(org["search"])
    policy = make_policy("mgr", [("manager", 1)])
    for n in range(5):
        ent = make_entitlement(service, slug=f"x{n}", policy=policy)
        first = services.access_request_submit(
            actor=requester,
            principal=requester,
            entitlement=ent,
            justification="x",
            duration_days=3,
        )
        services.access_request_approve(actor=manager, request_id=first.pk)
        grant = Grant.objects.get(request=first)
        ext = services.access_request_submit(
            actor=requester,
            principal=requester,
            entitlement=ent,
            justification="more",
            duration_days=20,
        )
        assert ext.kind == "extension"
        outcomes = run_together(
            [
                lambda ext=ext: services.access_request_approve(actor=manager, request_id=ext.pk),
                lambda grant=grant: services.grant_revoke(
                    actor=requester, grant_id=grant.pk, reason="done"
                ),
            ]
        )
        assert outcomes == ["ok", "ok"]
        held = Grant.objects.filter(
            principal=requester, entitlement=ent, status__in=Grant.HELD_STATUSES
        ).count()
        grant.refresh_from_db()
        assert grant.status == "revoked"
        # Either the extension came first (then the revoke ended it) or the revoke did
        # (then the approval made a fresh grant): never two held grants, never an error.
        assert held in (0, 1)
    assert verify_chain().ok
