"""The demo's LDAP-backed service (demo/steps/ldap.py): off without the setting, and with a
real slapd the existing grants become memberships and an approval adds one."""

from __future__ import annotations

import io
import random

import pytest

from access import services
from access.models import AccessRequest, Grant, Service
from demo.steps import ldap as demo_ldap
from tests.access.factories import grant_directly, make_entitlement, make_policy
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def user_directory(org):
    service = Service.objects.create(
        slug="user-directory", name="User Directory", owner_team=org["search"]
    )
    policy = make_policy("demo-mgr", [("manager", 1)])
    read = make_entitlement(service, slug="read", policy=policy)
    make_entitlement(service, slug="write", risk="medium", policy=policy)
    return service, read


@pytest.mark.sqlite
def test_without_the_setting_the_service_stays_connector_less(user_directory, settings):
    settings.TOLLGATE_DEMO_LDAP_DIR = ""
    out = io.StringIO()
    demo_ldap.seed_ldap(stdout=out, rng=random.Random(1))
    service, _ = user_directory
    service.refresh_from_db()
    assert (service.connector, service.connector_config) == ("", {})
    assert "TOLLGATE_DEMO_LDAP_DIR not set" in out.getvalue()


def test_with_slapd_grants_become_memberships_and_an_approval_adds_one(
    slapd,
    user_directory,
    admin,
    requester,
    manager,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    monkeypatch.setenv(demo_ldap.PASSWORD_ENV, slapd.service_password)
    monkeypatch.setattr(demo_ldap, "WANTED", ("write",))
    service, read = user_directory
    ann = make_user("ann.demo@example.com")
    grant_directly(ann, read)
    # the step asks for the demo engineer; here the requester plays that part
    requester.email = "engineer@example.com"
    requester.save(update_fields=["email"])
    out = io.StringIO()

    with django_capture_on_commit_callbacks(execute=True):
        demo_ldap.seed_ldap(stdout=out, rng=random.Random(1), server=slapd)

    service.refresh_from_db()
    assert service.connector == "ldap"
    assert "now uses the LDAP connector" in out.getvalue()
    read_group = f"cn=user-directory-read,{slapd.groups}"
    assert [v for v in slapd.values(read_group, "member") if v] == [f"uid=ann.demo,{slapd.people}"]
    request = AccessRequest.objects.get(principal=requester, entitlement__slug="write")
    assert request.status == "pending"

    with django_capture_on_commit_callbacks(execute=True):
        services.access_request_approve(actor=manager, request_id=request.pk, reason="ok")

    grant = Grant.objects.get(request=request)
    assert grant.status == "active"
    write_group = f"cn=user-directory-write,{slapd.groups}"
    assert [v for v in slapd.values(write_group, "member") if v] == [f"uid=engineer,{slapd.people}"]
    # running the step again changes nothing
    again = io.StringIO()
    demo_ldap.seed_ldap(stdout=again, rng=random.Random(1), server=slapd)
    assert "already uses the LDAP connector" in again.getvalue()
