"""A leaver import locks the leavers' grants before it writes its first audit event, so it
takes locks in the same order as a sync worker (grant, then audit chain head)."""

import pytest

from access.models import Grant
from access.services import grants_lock_for_leavers
from accounts import services as account_services
from accounts.directory import parse_text
from audit.models import AuditEvent
from portal.core.actors import DIRECTORY_IMPORT
from tests.access.factories import grant_directly, make_entitlement, make_service

HEADER = "email,name,team,parent_team,manager_email,worker_type,status,start_date,end_date"
LEAD = "lead@corp.test,Lea Lead,payments,platform,,employee,active,2020-01-01,"
ANN = "ann@corp.test,Ann Able,payments,platform,lead@corp.test,employee,active,2021-02-03,"
ANN_LEFT = (
    "ann@corp.test,Ann Able,payments,platform,lead@corp.test,employee,leaver,2021-02-03,2026-11-20"
)


def _import(*lines):
    return account_services.directory_import(
        rows=parse_text(HEADER + "\n" + "\n".join(lines) + "\n"),
        full=False,
        dry_run=False,
        actor=DIRECTORY_IMPORT,
    )


def test_the_grant_lock_hook_is_registered():
    assert grants_lock_for_leavers in account_services.LEAVER_PREPARE_HOOKS


@pytest.mark.django_db
def test_leavers_grants_are_locked_before_the_first_audit_event(org, monkeypatch):
    from accounts.models import User

    _import(LEAD, ANN)
    ann = User.objects.get(email="ann@corp.test")
    grant = grant_directly(ann, make_entitlement(make_service(org["search"])))
    seen = []

    def spy(*, users):
        seen.append(([u.email for u in users], AuditEvent.objects.count()))
        return grants_lock_for_leavers(users=users)

    monkeypatch.setattr(account_services, "LEAVER_PREPARE_HOOKS", [spy])
    before = AuditEvent.objects.count()
    _import(LEAD, ANN_LEFT)

    assert seen == [(["ann@corp.test"], before)]
    assert Grant.objects.get(pk=grant.pk).status in ("revoking", "revoked")
    assert AuditEvent.objects.count() > before


@pytest.mark.django_db
def test_an_import_without_leavers_calls_no_prepare_hook(org, monkeypatch):
    calls = []
    monkeypatch.setattr(
        account_services, "LEAVER_PREPARE_HOOKS", [lambda *, users: calls.append(users)]
    )
    _import(LEAD, ANN)
    assert calls == []
