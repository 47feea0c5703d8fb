"""Break-glass checks requestability, prerequisites and separation of duties, and does so
under the person's and the grant's locks (so nothing slips between check and write)."""

from __future__ import annotations

import pytest

from access import services, workflow
from access.models import FollowUpReview, Grant, SyncJob
from access.outcomes import RefusalCode
from access.services import grants_direct
from audit.models import AuditEvent
from portal.core import locks
from portal.core.errors import DomainError
from tests.access.factories import grant_directly, make_entitlement
from tests.access.sync_support import fake_service
from tests.access.sync_support import fresh_fakes as fresh_fakes

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_fakes")]


def nothing() -> tuple:
    return (
        Grant.objects.count(),
        AuditEvent.objects.count(),
        FollowUpReview.objects.count(),
        SyncJob.objects.count(),
    )


def take(person, ent):
    return services.grant_break_glass(
        actor=person, entitlement_id=ent.pk, reason="prod incident INC-42", hours=1
    )


@pytest.fixture
def billing(org):
    return fake_service(org["search"], "billing")


def test_break_glass_refuses_what_is_not_requestable(requester, billing):
    ent = make_entitlement(billing, slug="admin", allows_break_glass=True, requestable=False)
    before = nothing()
    with pytest.raises(DomainError, match="not requestable") as refused:
        take(requester, ent)
    assert refused.value.reason_code == RefusalCode.NOT_ELIGIBLE
    assert nothing() == before


def test_break_glass_refuses_a_missing_prerequisite(requester, billing):
    base = make_entitlement(billing, slug="read")
    ent = make_entitlement(billing, slug="admin", allows_break_glass=True)
    ent.prerequisites.set([base])
    before = nothing()
    with pytest.raises(DomainError, match="missing prerequisite access") as refused:
        take(requester, ent)
    assert refused.value.reason_code == RefusalCode.MISSING_PREREQUISITE
    assert nothing() == before
    grant_directly(requester, base)
    assert take(requester, ent).break_glass is True


def test_break_glass_refuses_a_toxic_pair(requester, security, billing):
    held = make_entitlement(billing, slug="approve-pay")
    ent = make_entitlement(billing, slug="pay", allows_break_glass=True)
    services.toxic_pair_create(actor=security, first=held, second=ent, reason="four eyes")
    grant_directly(requester, held)
    before = nothing()
    with pytest.raises(DomainError, match="separation of duties") as refused:
        take(requester, ent)
    assert refused.value.reason_code == RefusalCode.SEPARATION_OF_DUTIES
    assert nothing() == before


def test_break_glass_checks_under_the_locks(requester, billing, monkeypatch):
    ent = make_entitlement(billing, slug="admin", allows_break_glass=True)
    seen: dict[str, list] = {}
    real_toxic = workflow.toxic_conflicts
    real_prereq = grants_direct._refuse_missing_prerequisites

    def toxic(**kwargs):
        seen["sod"] = list(taken)
        return real_toxic(**kwargs)

    def prereq(*args):
        seen["prerequisites"] = list(taken)
        return real_prereq(*args)

    monkeypatch.setattr(workflow, "toxic_conflicts", toxic)
    monkeypatch.setattr(grants_direct, "_refuse_missing_prerequisites", prereq)
    with locks.lock_trace() as taken:
        take(requester, ent)
    for check in ("sod", "prerequisites"):
        assert ("accounts.User", requester.pk) in seen[check], check
