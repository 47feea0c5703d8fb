"""Leavers through SCIM (active=false, DELETE): grants revoked through the outbox, tokens and
sessions ended, in the directory's transaction; the mass-leaver hold; joiners' bundles."""

from __future__ import annotations

import pytest

from access.models import Grant, SyncJob
from accounts.models import User
from audit.models import AuditEvent
from connectors.fake import FakeConnector
from scim.models import HeldChange
from tests.access.factories import grant_directly, make_entitlement
from tests.access.sync_support import fake_service, fresh_fakes  # noqa: F401
from tests.conftest import make_user

from .conftest import patch_body, user_body

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_fakes")]


def test_active_false_is_a_leaver_grants_revoked_through_the_outbox(
    scim, org, requester, client, django_capture_on_commit_callbacks
):
    from tokens.models import ApiToken
    from tokens.services import api_token_create

    billing = fake_service(org["search"], "billing")
    backend = FakeConnector.backend("billing")
    grant = grant_directly(requester, make_entitlement(billing, slug="read"))
    backend.set_holder(requester.email, "read")
    api_token_create(actor=requester, user=requester, name="ci")
    browser = client.__class__()
    browser.force_login(requester)

    with django_capture_on_commit_callbacks(execute=True):
        response = scim(
            "PATCH",
            f"Users/{requester.pk}",
            patch_body({"op": "replace", "value": {"active": False}}),
        )

    assert response.status_code == 200, response.doc
    assert response.doc["active"] is False
    requester.refresh_from_db()
    assert (requester.status, requester.is_active) == ("leaver", False)
    grant.refresh_from_db()
    assert grant.status == "revoked"
    job = SyncJob.objects.get(grant=grant, origin="leaver")
    assert (job.operation, job.status) == ("revoke", "done")
    assert not backend.holds(requester.email, "read")
    assert ApiToken.objects.filter(user=requester, revoked_at__isnull=True).count() == 0
    assert browser.get("/grants/").status_code == 302  # the session ended
    left = AuditEvent.objects.get(action="user.left")
    assert left.actor_label == "system:scim.okta"
    revoke = AuditEvent.objects.get(action="grant.revoke", target_id=str(grant.pk))
    assert revoke.actor_label == "system:scim.okta"


def test_delete_is_a_leaver_and_the_user_is_gone_from_scim_until_created_again(
    scim, org, requester
):
    url = f"Users/{requester.pk}"
    response = scim("DELETE", url)
    assert response.status_code == 204
    requester.refresh_from_db()
    assert requester.status == "leaver" and not requester.is_active
    assert scim("GET", url).status_code == 404
    again = scim("POST", "Users", user_body(requester.email, department="payments"))
    assert again.status_code == 201, again.doc
    requester.refresh_from_db()
    assert requester.is_active and requester.end_date is None
    assert AuditEvent.objects.filter(action="user.rejoined").count() == 1


def test_a_joiner_gets_the_team_standard_bundle(scim, org, admin):
    from patterns import services as patterns
    from tests.patterns.support import catalog, held

    _, ents = catalog(org["search"])
    patterns.bundle_adopt(actor=admin, team=org["payments"], entitlement_ids=[ents["read"].pk])
    response = scim("POST", "Users", user_body("joiner@corp.test", department="payments"))
    assert response.status_code == 201
    user = User.objects.get(email="joiner@corp.test")
    assert held(user) == {"read"}
    applied = AuditEvent.objects.get(action="patterns.bundle_applied")
    assert applied.actor_label == "system:scim.okta"


@pytest.fixture
def crowd(org):
    return [make_user(f"p{i}@corp.test", team=org["search"]) for i in range(10)]


def test_a_mass_leaver_push_is_held_then_confirmed_or_discarded(
    scim, settings, crowd, admin, client, django_capture_on_commit_callbacks
):
    settings.TOLLGATE_SCIM_MAX_LEAVER_SHARE = 0.10
    settings.TOLLGATE_SCIM_LEAVER_FLOOR = 1
    active = User.objects.filter(is_active=True).count()  # 11 people: one leaver is allowed
    assert active == 11
    assert scim("DELETE", f"Users/{crowd[0].pk}").status_code == 204
    count = AuditEvent.objects.count()

    second = scim("DELETE", f"Users/{crowd[1].pk}")
    third = scim(
        "PATCH",
        f"Users/{crowd[2].pk}",
        patch_body({"op": "replace", "path": "active", "value": False}),
    )

    assert (second.status_code, third.status_code) == (202, 202)
    assert "held" in second.doc["detail"]
    crowd[1].refresh_from_db()
    crowd[2].refresh_from_db()
    assert crowd[1].is_active and crowd[2].is_active
    held = list(HeldChange.objects.order_by("pk"))
    assert [(h.email, h.operation, h.status) for h in held] == [
        (crowd[1].email, f"DELETE /Users/{crowd[1].pk}", "pending"),
        (crowd[2].email, f"PATCH /Users/{crowd[2].pk}", "pending"),
    ]
    events = AuditEvent.objects.filter(seq__gt=0).order_by("seq")[count:]
    assert [e.action for e in events] == ["scim.change_held", "scim.change_held"]

    client.force_login(admin)
    page = client.get("/scim/")
    assert crowd[1].email in page.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/scim/held/{held[0].pk}/confirm").status_code == 302
    assert client.post(f"/scim/held/{held[1].pk}/discard").status_code == 302
    crowd[1].refresh_from_db()
    crowd[2].refresh_from_db()
    assert (crowd[1].is_active, crowd[2].is_active) == (False, True)
    assert scim("GET", f"Users/{crowd[1].pk}").status_code == 404  # a confirmed DELETE
    assert list(HeldChange.objects.order_by("pk").values_list("status", flat=True)) == [
        "applied",
        "discarded",
    ]
    confirmed = AuditEvent.objects.get(action="scim.held_confirmed")
    assert confirmed.actor_label == admin.email
    left = AuditEvent.objects.filter(action="user.left").last()
    assert left.actor_label == "system:scim.okta"
    assert "confirmed by admin@example.com" in left.reason
    assert AuditEvent.objects.get(action="scim.held_discarded").actor_label == admin.email
    # Decided once: a second answer is refused and changes nothing.
    assert client.post(f"/scim/held/{held[1].pk}/confirm").status_code == 302
    crowd[2].refresh_from_db()
    assert crowd[2].is_active


def test_held_changes_refuse_non_admins(scim, settings, crowd, requester, client):
    settings.TOLLGATE_SCIM_MAX_LEAVER_SHARE = 0.0
    settings.TOLLGATE_SCIM_LEAVER_FLOOR = 0
    assert scim("DELETE", f"Users/{crowd[0].pk}").status_code == 202
    held = HeldChange.objects.get()
    client.force_login(requester)
    assert client.post(f"/scim/held/{held.pk}/confirm").status_code == 404
    assert client.post(f"/scim/held/{held.pk}/discard").status_code == 404
    held.refresh_from_db()
    assert held.status == "pending"
    crowd[0].refresh_from_db()
    assert crowd[0].is_active
    assert not Grant.objects.exists()
