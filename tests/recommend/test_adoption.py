"""An adopted threshold auto-approves at request time (through access.workflow.REQUEST_CHECKS)."""

from __future__ import annotations

import pytest

from access import services as access_services
from access import workflow
from access.models import PolicyStage
from recommend.services import adoption_save
from tests.access.factories import make_policy

pytestmark = pytest.mark.django_db


@pytest.fixture
def policy(read, admin_access):
    policy = make_policy("standard", [(PolicyStage.ApproverKind.MANAGER, 1)])
    for ent in (read, admin_access):
        ent.policy = policy
        ent.save(update_fields=["policy"])
    return policy


def _submit(person, entitlement):
    return access_services.access_request_submit(
        actor=person, principal=person, entitlement=entitlement, justification="need it"
    )


@pytest.mark.sqlite
def test_adopted_policy_auto_approves_a_likely_request(
    trained, policy, admin, payments_people, read
):
    adoption_save(actor=admin, policy=policy, min_probability="0.6", max_risk="low", enabled=True)
    req = _submit(payments_people[2], read)
    assert req.status == "approved"
    assert req.auto_approval_reason.startswith("recommendation p=")
    assert "≥ 0.6000 adopted by policy standard (model v1)" in req.auto_approval_reason
    assert req.grants.count() == 1


def test_unlikely_request_waits_for_people(trained, policy, admin, other_people, read):
    adoption_save(actor=admin, policy=policy, min_probability="0.6", max_risk="low", enabled=True)
    req = _submit(other_people[2], read)
    assert (req.status, req.auto_approval_reason) == ("pending", "")


def test_never_above_max_risk(trained, policy, admin, payments_people, admin_access, read):
    adoption_save(actor=admin, policy=policy, min_probability="0.5", max_risk="low", enabled=True)
    preview = workflow.preview(
        requester=payments_people[2], principal=payments_people[2], entitlement=admin_access
    )
    assert preview.auto_approval_offers == []
    req = _submit(payments_people[2], admin_access)  # high risk
    assert (req.status, req.auto_approval_reason) == ("pending", "")


def test_disabled_adoption_offers_nothing(trained, policy, admin, payments_people, read):
    adoption_save(actor=admin, policy=policy, min_probability="0.6", max_risk="low", enabled=False)
    req = _submit(payments_people[2], read)
    assert req.status == "pending"


def test_no_offer_without_a_model(history, policy, admin, payments_people, read):
    adoption_save(actor=admin, policy=policy, min_probability="0.5", max_risk="low", enabled=True)
    req = _submit(payments_people[2], read)
    assert req.status == "pending"


def test_no_offer_when_another_check_rules_auto_approval_out(
    trained, policy, admin, payments_people, read, monkeypatch
):
    def veto(*, preview, **kwargs):
        preview.no_auto_approval.append("standard: needs a human")

    monkeypatch.setattr(workflow, "REQUEST_CHECKS", [veto, *workflow.REQUEST_CHECKS])
    adoption_save(actor=admin, policy=policy, min_probability="0.6", max_risk="low", enabled=True)
    preview = workflow.preview(
        requester=payments_people[2], principal=payments_people[2], entitlement=read
    )
    assert preview.auto_approval_offers == [] and preview.auto_approval is None
    req = _submit(payments_people[2], read)
    assert req.status == "pending"


def test_no_offer_when_the_preview_refuses(trained, policy, admin, payments_people, read):
    adoption_save(actor=admin, policy=policy, min_probability="0.6", max_risk="low", enabled=True)
    _submit(payments_people[2], read)  # approved; a second ask is an extension, fine
    other = payments_people[3]
    first = workflow.preview(requester=other, principal=other, entitlement=read, duration_days=9999)
    assert first.refusals and first.auto_approval_offers == []
