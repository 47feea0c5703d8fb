"""System actors are values: strings are refused, and a system actor a service does not expect
is refused like a person without the role."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from audit.services import audit_record
from portal.core.actors import (
    CLI,
    LEAVER,
    RECOMMEND,
    REVIEWS,
    SCIM,
    STANDARDS_IMPORT,
    STANDARDS_SCAN,
    SystemActor,
    actor_label,
    actor_may,
    actor_user,
    is_system,
)
from portal.core.errors import NotPermitted
from recommend.services import recommendation_model_train
from standards.models import PolicyVersion, ScanRun
from standards.services import standards_apply, standards_scan
from tokens.policies import may_create_token_for, may_manage_service_tokens

DOCUMENT = "standards: []\n"


def test_a_system_actor_is_named_and_labelled():
    assert SCIM.label == str(SCIM) == "system:scim"
    assert SystemActor("scim") == SCIM
    assert is_system(SCIM) and not is_system(None)


@pytest.mark.parametrize("name", ["", "x", "Upper", "has space", "system:scim", "a" * 65])
def test_a_bad_system_actor_name_is_refused(name):
    with pytest.raises(ValueError, match="system actor name"):
        SystemActor(name)


@pytest.mark.parametrize("helper", [is_system, actor_label, actor_user])
def test_every_helper_refuses_a_string(helper):
    with pytest.raises(TypeError, match="is a string"):
        helper("system:leaver")


def test_actor_may_asks_the_person_check_for_people_and_the_list_for_system_actors(requester):
    assert actor_may(requester, lambda person: person == requester)
    assert not actor_may(requester, lambda person: False, systems=(LEAVER,))
    assert actor_may(LEAVER, lambda person: False, systems=(LEAVER,))
    assert not actor_may(SCIM, lambda person: True, systems=(LEAVER,))
    assert not actor_may(None, lambda person: True, systems=(LEAVER,))
    with pytest.raises(TypeError):
        actor_may("system:leaver", lambda person: True, systems=(LEAVER,))


@pytest.mark.django_db
def test_the_audit_trail_records_which_system_actor_acted_and_refuses_strings(requester):
    event = audit_record(actor=LEAVER, action="user.left", target=requester)
    assert (event.actor_id, event.actor_label) == (None, "system:leaver")
    mine = audit_record(actor=requester, action="user.left", target=requester)
    assert (mine.actor_id, mine.actor_label) == (requester.pk, requester.email)
    count = AuditEvent.objects.count()
    with pytest.raises(TypeError):
        audit_record(actor="system:leaver", action="user.left", target=requester)
    assert AuditEvent.objects.count() == count


@pytest.mark.django_db
def test_standards_accept_only_their_own_system_actors(admin):
    with pytest.raises(NotPermitted):
        standards_apply(actor=SCIM, text=DOCUMENT, check_base=False)
    with pytest.raises(TypeError):
        standards_apply(actor="system:standards-import", text=DOCUMENT, check_base=False)
    assert not PolicyVersion.objects.exists()
    with pytest.raises(NotPermitted):
        standards_scan(actor=STANDARDS_IMPORT)
    assert not ScanRun.objects.exists()
    scan = standards_scan(actor=STANDARDS_SCAN)
    assert scan.actor_label == "system:standards-scan"


@pytest.mark.django_db
def test_recommender_training_refuses_another_system_actor():
    with pytest.raises(NotPermitted):
        recommendation_model_train(actor=REVIEWS)
    with pytest.raises(TypeError):
        recommendation_model_train(actor="system:recommend")
    assert recommendation_model_train(actor=RECOMMEND) is None  # too little data, not refused


@pytest.mark.django_db
def test_token_policies_accept_the_cli_but_no_other_system_actor(requester, admin):
    assert may_manage_service_tokens(CLI) and may_manage_service_tokens(admin)
    assert not may_manage_service_tokens(SCIM) and not may_manage_service_tokens(requester)
    assert may_create_token_for(CLI, requester) and may_create_token_for(requester, requester)
    assert not may_create_token_for(LEAVER, requester) and not may_create_token_for(
        admin, requester
    )
