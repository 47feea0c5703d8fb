"""Role mining and standard bundles are started and changed by people: no system actor is
accepted by those checks, and a string actor is a TypeError."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from patterns import services
from patterns.models import MiningRun, StandardBundle
from portal.core.actors import JOINER, ROLE_MINING, TEST, SystemActor
from portal.core.errors import NotPermitted
from tests.access.factories import make_entitlement, make_service

pytestmark = pytest.mark.django_db


@pytest.fixture
def read(org):
    return make_entitlement(make_service(org["payments"], "ledger"), "read")


@pytest.mark.parametrize("actor", ["system:role-mining", "admin", ""])
def test_a_string_actor_is_refused_and_nothing_is_written(org, read, requester, actor):
    with pytest.raises(TypeError):
        services.mining_run_create(actor=actor, team=org["payments"])
    with pytest.raises(TypeError):
        services.bundle_adopt(actor=actor, team=org["payments"], entitlement_ids=[read.pk])
    with pytest.raises(TypeError):
        services.bundle_apply(user=requester, team=org["payments"], actor=actor)
    assert not MiningRun.objects.exists()
    assert not StandardBundle.objects.exists()
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize("actor", [ROLE_MINING, JOINER, TEST, SystemActor("someone-else")])
def test_no_system_actor_starts_mining_or_changes_bundles(org, read, actor):
    with pytest.raises(NotPermitted):
        services.mining_run_create(actor=actor, team=org["payments"])
    with pytest.raises(NotPermitted):
        services.bundle_adopt(actor=actor, team=org["payments"], entitlement_ids=[read.pk])
    assert not MiningRun.objects.exists()
    assert not StandardBundle.objects.exists()
    assert not AuditEvent.objects.exists()


def test_a_person_without_the_role_is_refused(org, read, requester):
    with pytest.raises(NotPermitted):
        services.mining_run_create(actor=requester, team=org["payments"])
    with pytest.raises(NotPermitted):
        services.bundle_adopt(actor=requester, team=org["payments"], entitlement_ids=[read.pk])
    assert not MiningRun.objects.exists()
    assert not StandardBundle.objects.exists()
