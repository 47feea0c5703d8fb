import io
import random
from datetime import timedelta

import pytest
from django.utils import timezone

from access.models import Grant
from demo.steps.usage import seed_unused
from tests.access.factories import grant_directly, make_entitlement, make_service
from tests.conftest import make_user
from usage.models import UnusedRemoval, UsageCoverage, UsageMappingRule


@pytest.mark.django_db
@pytest.mark.sqlite
def test_demo_seeds_a_source_last_use_and_a_few_scheduled_removals(org):
    make_user("admin@tollgate.test", roles=["platform-admin"])  # makes the mapping rules
    svc = make_service(org["search"], "wiki")
    ents = [make_entitlement(svc, f"e{i}") for i in range(2)]
    now = timezone.now()
    people = [make_user(f"p{i}@example.com", team=org["payments"]) for i in range(6)]
    grants = [grant_directly(p, ents[i % 2], days=200) for i, p in enumerate(people)]
    Grant.objects.filter(pk__in=[g.pk for g in grants]).update(starts_at=now - timedelta(days=300))
    out = io.StringIO()
    seed_unused(stdout=out, rng=random.Random(1))
    assert UsageCoverage.objects.get(service=svc).last_success_at is not None
    assert UsageMappingRule.objects.count() == 1
    assert Grant.objects.filter(last_used_at__isnull=False).count() == 6
    scheduled = UnusedRemoval.objects.filter(status="scheduled")
    assert scheduled.count() == 3
    seed_unused(stdout=out, rng=random.Random(1))
    assert UnusedRemoval.objects.count() == 3
    assert "skipped" in out.getvalue()


@pytest.mark.django_db
def test_demo_usage_step_needs_the_demo_admin_for_its_mapping_rules(org):
    out = io.StringIO()
    seed_unused(stdout=out, rng=random.Random(1))
    assert "demo admin missing; skipped" in out.getvalue()
    assert not UsageMappingRule.objects.exists() and not UsageCoverage.objects.exists()
