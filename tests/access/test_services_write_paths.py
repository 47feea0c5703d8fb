"""The access services' structure holds: one lock order, one revoke path with its origins,
system actors named per service (strings refused), and refusals with stable codes."""

from __future__ import annotations

import pytest

from access import services
from access.models import AccessRequest, Grant, SyncJob, ToxicPair
from access.outcomes import REFUSAL_STATUS, RefusalCode
from access.services import RevokeOrigin
from accounts import services as account_services
from audit import services as audit_services
from audit.models import AuditEvent
from portal.core import locks
from portal.core.actors import (
    GRANT_EXPIRY,
    LEAVER,
    RECONCILER,
    SCIM,
    TEST,
    UNUSED_ACCESS,
)
from portal.core.errors import Conflict, NotPermitted, ValidationError
from tests.access.factories import grant_directly, make_entitlement, make_service, snapshot
from tests.access.sync_support import fake_service
from tests.access.sync_support import fresh_fakes as fresh_fakes

pytestmark = pytest.mark.django_db


@pytest.fixture
def traced(monkeypatch):
    """Record row locks (first acquisition of each row), the audit chain head included."""
    original = audit_services._lock_and_bump_head

    def head():
        result = original()
        locks.lock_note("audit.ChainHead", "head")
        return result

    monkeypatch.setattr(audit_services, "_lock_and_bump_head", head)
    with locks.lock_trace() as taken:
        yield taken


def _kinds(taken):
    seen = []
    for name, _ in taken:
        if name not in seen:
            seen.append(name)
    return seen


# --- Lock order -------------------------------------------------------------------------
def test_lock_order_names_each_row_type_once_and_ends_with_the_audit_head():
    assert len(set(locks.LOCK_ORDER)) == len(locks.LOCK_ORDER)
    assert locks.LOCK_ORDER[-1] == "audit.ChainHead"
    assert locks.lock_order_violations([("access.SyncJob", 1), ("access.Grant", 2)]) == [
        "access.Grant #2 locked after access.SyncJob"
    ]
    with pytest.raises(ValueError, match="not in LOCK_ORDER"):
        locks.lock_note("access.Nothing", 1)


def test_request_approval_locks_in_lock_order(requester, manager, org, traced):
    ent = make_entitlement(make_service(org["search"]))
    grant_directly(requester, ent)  # the approval extends it: the held grant is locked
    req = services.access_request_submit(
        actor=requester, principal=requester, entitlement=ent, justification="on call"
    )
    traced.clear()
    services.access_request_approve(actor=manager, request_id=req.pk, reason="ok")
    assert locks.lock_order_violations(traced) == []
    assert _kinds(traced) == ["access.AccessRequest", "access.Grant", "audit.ChainHead"]


def test_the_leaver_flow_locks_in_lock_order(
    requester, admin, org, traced, fresh_fakes, django_capture_on_commit_callbacks
):
    service = fake_service(org["search"])
    held = [grant_directly(requester, make_entitlement(service, slug=s)) for s in ("read", "write")]
    # An open job of the first grant is cancelled by the revocation: locked up front too.
    services.job_create(
        actor=TEST, service=service, operation="grant", grant=held[0], origin="request"
    )
    traced.clear()
    with django_capture_on_commit_callbacks(execute=False):
        account_services.user_mark_leaver(user=requester, actor=admin, reason="left")
    assert locks.lock_order_violations(traced) == []
    assert _kinds(traced) == ["access.Grant", "access.SyncJob", "audit.ChainHead"]
    assert {g.status for g in Grant.objects.filter(pk__in=[g.pk for g in held])} == {"revoking"}
    assert SyncJob.objects.filter(origin="leaver", operation="revoke").count() == 2


def test_leaver_hooks_are_registered_in_lock_order():
    hooks: list = []

    def tokens_hook(**_):  # registered without an order: runs after the ordered ones
        pass

    def grants_hook(**_):
        pass

    hooks.append(tokens_hook)
    locks.hook_register(hooks, grants_hook, order="access.Grant")
    locks.hook_register(hooks, grants_hook, order="access.Grant")
    assert hooks == [grants_hook, tokens_hook]
    assert account_services.LEAVER_HOOKS.count(services.grants_revoke_for_leaver) == 1
    # Requests lock before grants (LOCK_ORDER): a leaver's requests go first, then grants.
    assert account_services.LEAVER_HOOKS[:2] == [
        services.requests_cancel_for_leaver,
        services.grants_revoke_for_leaver,
    ]


# --- One revoke path ----------------------------------------------------------------------
def test_a_string_actor_is_refused_and_nothing_changes(requester, admin, org):
    grant = grant_directly(requester, make_entitlement(make_service(org["search"])))
    before = snapshot()
    for call in (
        lambda: services.grant_revoke(grant, actor="system:test", reason="x"),
        lambda: services.grant_revoke(grant_id=grant.pk, actor="admin", reason="x"),
        lambda: services.policy_create(actor="system:test", slug="p", name="P", stages=[]),
        lambda: services.grant_restore(actor="system:test", revoked_grant_id=grant.pk, reason="x"),
        lambda: services.access_request_approve(actor="system:test", request_id=1),
        lambda: services.reconcile_service(service_id=grant.entitlement.service_id, actor="x"),
    ):
        with pytest.raises(TypeError, match="is a string"):
            call()
    assert snapshot() == before
    assert Grant.objects.get(pk=grant.pk).status == "active"


@pytest.mark.parametrize(
    ("actor", "origin"),
    [
        (RECONCILER, None),  # not a revoker at all
        (SCIM, RevokeOrigin.EXPIRY),  # a leaver feed does not expire grants
        (UNUSED_ACCESS, RevokeOrigin.MANUAL),  # revokes only as unused access
        (GRANT_EXPIRY, RevokeOrigin.LEAVER),
        (LEAVER, RevokeOrigin.LEAVER),  # the holder has not left
    ],
)
def test_a_system_actor_the_origin_does_not_accept_is_refused(requester, org, actor, origin):
    grant = grant_directly(requester, make_entitlement(make_service(org["search"])))
    before = (AuditEvent.objects.count(), SyncJob.objects.count())
    kwargs = {"origin": origin} if origin else {}
    if actor is LEAVER:
        with pytest.raises(NotPermitted) as exc:
            services.grant_revoke(grant, actor=SCIM, reason="x", origin=RevokeOrigin.FOLLOW_UP)
    else:
        with pytest.raises(NotPermitted) as exc:
            services.grant_revoke(grant, actor=actor, reason="no", **kwargs)
    assert exc.value.reason_code == RefusalCode.NOT_PERMITTED
    assert Grant.objects.get(pk=grant.pk).status == "active"
    assert (AuditEvent.objects.count(), SyncJob.objects.count()) == before


def test_the_wrong_person_may_not_revoke(requester, other_team_user, org):
    grant = grant_directly(requester, make_entitlement(make_service(org["search"])))
    before = AuditEvent.objects.count()
    with pytest.raises(NotPermitted, match="only the holder"):
        services.grant_revoke(grant, actor=other_team_user, reason="mine now")
    assert Grant.objects.get(pk=grant.pk).status == "active"
    assert AuditEvent.objects.count() == before


@pytest.mark.parametrize(
    ("actor", "origin", "action", "job_origin"),
    [
        (GRANT_EXPIRY, None, "grant.expire", "expiry"),
        (UNUSED_ACCESS, None, "grant.revoke", "revoke"),
        (GRANT_EXPIRY, RevokeOrigin.EXPIRY, "grant.expire", "expiry"),
    ],
)
def test_system_actors_revoke_with_their_origin(
    requester, org, fresh_fakes, actor, origin, action, job_origin
):
    grant = grant_directly(requester, make_entitlement(fake_service(org["search"])))
    kwargs = {"origin": origin} if origin else {}
    services.grant_revoke(grant, actor=actor, reason="time is up", **kwargs)
    grant.refresh_from_db()
    assert grant.status == "revoking"
    event = AuditEvent.objects.filter(target_type="access.grant", target_id=str(grant.pk)).last()
    assert (event.action, event.actor_label) == (action, actor.label)
    assert SyncJob.objects.get(grant=grant, operation="revoke").origin == job_origin


def test_the_holder_revokes_by_hand_and_the_callers_copy_follows(requester, org):
    grant = grant_directly(requester, make_entitlement(make_service(org["search"])))
    returned = services.grant_revoke(grant, actor=requester, reason="done with it")
    assert (grant.status, returned.status) == ("revoked", "revoked")
    with pytest.raises(Conflict):  # already revoked: the transition table refuses
        services.grant_revoke(grant_id=grant.pk, actor=requester, reason="again")


# --- System actors elsewhere ------------------------------------------------------------
def test_system_actors_are_refused_where_no_system_is_expected(requester, org, admin):
    a = make_entitlement(make_service(org["search"]), slug="a")
    b = make_entitlement(a.service, slug="b")
    before = snapshot()
    with pytest.raises(NotPermitted):
        services.policy_create(actor=TEST, slug="p", name="P", stages=[{"kind": "manager"}])
    with pytest.raises(NotPermitted):
        services.toxic_pair_create(actor=TEST, first=a, second=b, reason="x")
    with pytest.raises(NotPermitted):
        services.service_update(actor=TEST, service=a.service, name="renamed")
    with pytest.raises(NotPermitted):
        services.grant_break_glass(actor=TEST, entitlement_id=a.pk, reason="prod is down", hours=1)
    with pytest.raises(NotPermitted):
        services.access_request_submit(
            actor=TEST, principal=requester, entitlement=a, justification="x"
        )
    with pytest.raises(NotPermitted):
        services.reconcile_service(service_id=a.service_id, actor=TEST)
    assert snapshot() == before
    assert ToxicPair.objects.count() == 0


# --- Refusal codes --------------------------------------------------------------------------
def test_every_refusal_code_has_a_status():
    assert set(REFUSAL_STATUS) == set(RefusalCode)
    assert set(REFUSAL_STATUS.values()) <= {400, 403, 404, 409}


def test_submission_refusals_carry_their_code(requester, manager, org):
    ent = make_entitlement(make_service(org["search"]), slug="read")
    services.access_request_submit(
        actor=requester, principal=requester, entitlement=ent, justification="on call"
    )
    with pytest.raises(Conflict) as exc:
        services.access_request_submit(
            actor=requester, principal=requester, entitlement=ent, justification="again"
        )
    assert exc.value.reason_code == RefusalCode.DUPLICATE_OPEN_REQUEST
    other = make_entitlement(ent.service, slug="admin")
    ToxicPair.objects.create(first=ent, second=other, reason="reader may not administer")
    with pytest.raises(ValidationError) as exc:
        services.access_request_submit(
            actor=requester, principal=requester, entitlement=other, justification="x"
        )
    assert exc.value.reason_code == RefusalCode.SEPARATION_OF_DUTIES
    req = AccessRequest.objects.get(entitlement=ent)
    with pytest.raises(NotPermitted) as exc:
        services.access_request_approve(actor=requester, request_id=req.pk)
    assert exc.value.reason_code == RefusalCode.OWN_REQUEST
