"""`make run` runs `seed_demo --migrate --if-empty`: on a database that has the demo it applies
what migrations there are and writes nothing else (the second start is quick)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from access.models import AccessRequest, Service
from audit.models import AuditEvent
from demo.steps.accounts import DEMO_ACCOUNTS
from tests.conftest import make_user


@pytest.mark.sqlite
@pytest.mark.django_db
def test_a_second_start_migrates_and_leaves_the_demo_alone():
    make_user(DEMO_ACCOUNTS[0].email)  # the demo is there
    events = AuditEvent.objects.count()
    out = StringIO()
    call_command("seed_demo", "--migrate", "--if-empty", stdout=out)
    assert "demo data already present; nothing to do (--if-empty)" in out.getvalue()
    assert Service.objects.count() == AccessRequest.objects.count() == 0
    assert AuditEvent.objects.count() == events
