"""The demo data goes through the services: the audit chain verifies and
the demo engineer's request waits on the demo manager."""

from __future__ import annotations

import io
import random

import pytest

from access import services, workflow
from access.models import AccessRequest, ApprovalPolicy, Grant, Service, ToxicPair
from accounts.models import User
from audit.verify import verify_chain
from demo.steps import access as demo
from demo.steps.accounts import seed_people


@pytest.mark.slow
@pytest.mark.django_db
def test_seed_access_writes_a_verifiable_history(monkeypatch):
    monkeypatch.setattr(demo, "HISTORY_REQUESTS", 120)
    out = io.StringIO()
    seed_people(stdout=out, rng=random.Random(7))
    demo.seed_access(stdout=out, rng=random.Random(7))
    assert Service.objects.count() == len(demo.SERVICES)
    assert ApprovalPolicy.objects.filter(slug="default").exists()
    assert ToxicPair.objects.count() == 3
    statuses = set(AccessRequest.objects.values_list("status", flat=True))
    assert statuses == {"pending", "approved", "denied", "cancelled", "expired"}
    assert Grant.objects.filter(status="active").exists()
    result = verify_chain()
    assert result.ok, result.broken
    engineer = User.objects.get(email="engineer@tollgate.test")
    manager = User.objects.get(email="manager@tollgate.test")
    req = AccessRequest.objects.get(
        principal=engineer, status="pending", entitlement__service__slug="elasticsearch-prod"
    )
    assert manager.pk in workflow.eligible_approvers(request=req)
    services.access_request_approve(actor=manager, request_id=req.pk, reason="demo")
    req.refresh_from_db()
    assert (req.status, req.current_stage) == ("pending", 1)
    # A second run changes nothing.
    before = AccessRequest.objects.count()
    demo.seed_access(stdout=out, rng=random.Random(7))
    assert AccessRequest.objects.count() == before
    assert "catalog already present; skipped" in out.getvalue()
