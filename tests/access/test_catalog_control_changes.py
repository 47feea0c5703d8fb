"""Owners cannot weaken their own controls: lowering an entitlement's risk, changing its
approval policy or turning break-glass on needs a platform admin or a security member. An
owner proposes; someone else (admin or security, never the proposer) applies or rejects."""

from __future__ import annotations

import pytest
from django.test import Client

from access import services
from access.models import CatalogChangeProposal, Entitlement
from access.outcomes import REFUSAL_STATUS, RefusalCode
from audit.models import AuditEvent
from portal.core.errors import Conflict, DomainError, NotPermitted, ValidationError
from tests.access.factories import make_entitlement, make_policy, make_service
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def ent(org):
    return make_entitlement(make_service(org["search"]), slug="admin", risk="high")


@pytest.fixture
def loose():
    return make_policy("loose", [("manager", 1)])


def state(ent) -> tuple:
    e = Entitlement.objects.get(pk=ent.pk)
    return (
        e.risk,
        e.policy_id,
        e.allows_break_glass,
        e.description,
        CatalogChangeProposal.objects.count(),
        AuditEvent.objects.count(),
    )


def weakening(loose) -> list[tuple[str, object]]:
    return [("risk", "low"), ("policy", loose), ("allows_break_glass", True)]


# --- The service refuses an owner's weakening; harmless edits stay direct ---------------
def test_an_owner_may_not_weaken_controls_directly(service_owner, ent, loose):
    for field, value in weakening(loose):
        before = state(ent)
        with pytest.raises(NotPermitted, match="may not weaken their own controls") as refused:
            services.entitlement_update(actor=service_owner, entitlement=ent, **{field: value})
        assert refused.value.reason_code == RefusalCode.NEEDS_CONTROL_REVIEW
        assert REFUSAL_STATUS[RefusalCode.NEEDS_CONTROL_REVIEW] == 403
        assert state(ent) == before


def test_an_owner_may_not_create_an_entitlement_with_break_glass_on(service_owner, admin, ent):
    service = ent.service
    before = (Entitlement.objects.count(), AuditEvent.objects.count())
    with pytest.raises(NotPermitted, match="create the entitlement without it") as refused:
        services.entitlement_create(
            actor=service_owner, service=service, slug="bg", name="BG", allows_break_glass=True
        )
    assert refused.value.reason_code == RefusalCode.NEEDS_CONTROL_REVIEW
    assert (Entitlement.objects.count(), AuditEvent.objects.count()) == before

    services.entitlement_create(actor=service_owner, service=service, slug="bg", name="BG")
    made = services.entitlement_create(
        actor=admin, service=service, slug="bg2", name="BG2", allows_break_glass=True
    )
    assert made.allows_break_glass is True


def test_control_changes_are_in_the_governance_menu_of_admins_and_security_only(
    client, admin, security, service_owner, ent, loose
):
    services.entitlement_update_or_propose(actor=service_owner, entitlement=ent, risk="low")
    for person, shown in ((admin, True), (security, True), (service_owner, False)):
        client.force_login(person)
        page = client.get("/").content.decode()
        assert ('href="/catalog-changes/"' in page) is shown, person
        client.logout()


def test_an_owner_raises_risk_and_edits_other_fields_directly(service_owner, ent):
    services.entitlement_update(
        actor=service_owner, entitlement=ent, risk="critical", description="prod admin"
    )
    ent.refresh_from_db()
    assert (ent.risk, ent.description) == ("critical", "prod admin")
    assert not CatalogChangeProposal.objects.exists()


@pytest.mark.parametrize("role", ["admin", "security_owner"])
def test_an_admin_or_a_security_owner_changes_controls_directly(request, org, ent, loose, role):
    if role == "admin":
        actor = request.getfixturevalue("admin")
    else:  # a security member who is also in the owner team may edit the entitlement
        actor = make_user("sec-owner@example.com", team=org["search"], roles=["security"])
    services.entitlement_update(
        actor=actor, entitlement=ent, risk="low", policy=loose, allows_break_glass=True
    )
    ent.refresh_from_db()
    assert (ent.risk, ent.policy_id, ent.allows_break_glass) == ("low", loose.pk, True)


# --- Propose, apply, reject ---------------------------------------------------------------
def test_an_owners_edit_saves_the_harmless_part_and_proposes_the_rest(
    service_owner, security, ent, loose
):
    proposals = services.entitlement_update_or_propose(
        actor=service_owner,
        entitlement=ent,
        description="prod admin",
        risk="low",
        policy=loose,
        allows_break_glass=True,
    )
    ent.refresh_from_db()
    assert (ent.description, ent.risk, ent.policy_id, ent.allows_break_glass) == (
        "prod admin",
        "high",
        None,
        False,
    )
    assert sorted((p.field, p.old_value, p.new_value, p.status) for p in proposals) == [
        ("allows_break_glass", False, True, "pending"),
        ("policy", None, loose.pk, "pending"),
        ("risk", "high", "low", "pending"),
    ]
    assert {p.proposed_by_id for p in proposals} == {service_owner.pk}
    assert AuditEvent.objects.filter(action="catalog.change_proposed").count() == 3

    # The proposer (an owner) cannot apply them.
    for proposal in proposals:
        before = state(ent)
        with pytest.raises(NotPermitted):
            services.catalog_change_apply(actor=service_owner, proposal_id=proposal.pk)
        assert state(ent) == before

    for proposal in proposals:
        services.catalog_change_apply(actor=security, proposal_id=proposal.pk, note="reviewed")
    ent.refresh_from_db()
    assert (ent.risk, ent.policy_id, ent.allows_break_glass) == ("low", loose.pk, True)
    decided = CatalogChangeProposal.objects.filter(pk__in=[p.pk for p in proposals])
    assert set(decided.values_list("status", "decided_by_id")) == {("applied", security.pk)}
    assert AuditEvent.objects.filter(action="catalog.change_applied").count() == 3
    assert AuditEvent.objects.filter(action="entitlement.updated").count() == 4  # + description


def test_nobody_applies_their_own_proposal(org, admin, ent):
    other_admin = make_user("admin2@example.com", team=org["platform"], roles=["platform-admin"])
    # An admin may propose too (e.g. to have a second pair of eyes); they may not apply it.
    proposal = services.catalog_change_propose(
        actor=admin, entitlement=ent, field="risk", new_value="low", reason="not sensitive"
    )
    before = state(ent)
    with pytest.raises(NotPermitted, match="nobody applies their own proposal") as refused:
        services.catalog_change_apply(actor=admin, proposal_id=proposal.pk)
    assert refused.value.reason_code == RefusalCode.OWN_PROPOSAL
    assert state(ent) == before
    services.catalog_change_apply(actor=other_admin, proposal_id=proposal.pk)
    assert Entitlement.objects.get(pk=ent.pk).risk == "low"


def test_only_admins_and_security_decide_proposals(
    service_owner, requester, other_team_user, security, ent
):
    proposal = services.catalog_change_propose(
        actor=service_owner, entitlement=ent, field="allows_break_glass", new_value=True
    )
    for person in (requester, other_team_user):
        before = state(ent)
        with pytest.raises(NotPermitted):
            services.catalog_change_apply(actor=person, proposal_id=proposal.pk)
        with pytest.raises(NotPermitted):
            services.catalog_change_reject(actor=person, proposal_id=proposal.pk, note="no")
        assert state(ent) == before
    # Outsiders cannot propose either.
    with pytest.raises(NotPermitted):
        services.catalog_change_propose(
            actor=other_team_user, entitlement=ent, field="risk", new_value="low"
        )
    services.catalog_change_reject(actor=security, proposal_id=proposal.pk, note="no emergencies")
    proposal.refresh_from_db()
    assert (proposal.status, proposal.decided_by_id, proposal.decision_note) == (
        "rejected",
        security.pk,
        "no emergencies",
    )
    assert Entitlement.objects.get(pk=ent.pk).allows_break_glass is False
    with pytest.raises(Conflict) as refused:
        services.catalog_change_apply(actor=security, proposal_id=proposal.pk)
    assert refused.value.reason_code == RefusalCode.ALREADY_DECIDED


def test_a_stale_or_duplicate_or_harmless_proposal_is_refused(service_owner, admin, security, ent):
    proposal = services.catalog_change_propose(
        actor=service_owner, entitlement=ent, field="risk", new_value="medium"
    )
    # The same change again is the same proposal; another value for that field waits.
    assert (
        services.catalog_change_propose(
            actor=service_owner, entitlement=ent, field="risk", new_value="medium"
        ).pk
        == proposal.pk
    )
    with pytest.raises(Conflict) as refused:
        services.catalog_change_propose(
            actor=service_owner, entitlement=ent, field="risk", new_value="low"
        )
    assert refused.value.reason_code == RefusalCode.PROPOSAL_PENDING
    with pytest.raises(ValidationError, match="does not weaken"):
        services.catalog_change_propose(
            actor=service_owner, entitlement=ent, field="risk", new_value="critical"
        )
    services.entitlement_update(actor=admin, entitlement=ent, risk="critical")
    before = state(ent)
    with pytest.raises(DomainError) as refused:
        services.catalog_change_apply(actor=security, proposal_id=proposal.pk)
    assert refused.value.reason_code == RefusalCode.PROPOSAL_STALE
    assert state(ent) == before


# --- Pages ----------------------------------------------------------------------------------
def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_edit_page_proposes_and_shows_the_waiting_change(service_owner, security, ent):
    url = f"/catalog/{ent.service.slug}/entitlements/{ent.pk}/edit/"
    owner = signed_in(service_owner)
    form = {
        "name": ent.name,
        "description": "",
        "risk": "low",
        "requestable": "on",
        "default_duration_days": ent.default_duration_days,
        "max_duration_days": ent.max_duration_days,
        "seat_cost_monthly": "0",
        "policy": "",
    }
    response = owner.post(url, form)
    assert response.status_code == 302
    assert Entitlement.objects.get(pk=ent.pk).risk == "high"
    proposal = CatalogChangeProposal.objects.get()
    assert (proposal.field, proposal.new_value) == ("risk", "low")
    page = owner.get(url).content.decode()
    assert "Waiting for a platform admin or security" in page
    assert "owner@example.com" in page

    # Owners do not see the list; security does, and applies it there.
    assert owner.get("/catalog-changes/").status_code == 404
    assert owner.post(f"/catalog-changes/{proposal.pk}/apply/").status_code == 404
    assert Entitlement.objects.get(pk=ent.pk).risk == "high"
    sec = signed_in(security)
    listing = sec.get("/catalog-changes/")
    assert listing.status_code == 200
    assert f'id="proposal-{proposal.pk}"' in listing.content.decode()
    assert sec.post(f"/catalog-changes/{proposal.pk}/apply/", {"note": ""}).status_code == 302
    assert Entitlement.objects.get(pk=ent.pk).risk == "low"
    assert f'id="proposal-{proposal.pk}"' not in sec.get("/catalog-changes/").content.decode()
