import io
import random

import pytest
from django.db.models import Sum

from costs.models import AttributionRule, CostDaily, CostLine, ImportRun
from demo.steps.costs import seed_costs


@pytest.mark.sqlite
@pytest.mark.django_db
def test_seed_costs_writes_attributed_shared_and_unallocated_months(org):
    out = io.StringIO()
    lines = seed_costs(stdout=out, rng=random.Random(3), months=2, resources_per_team=4)
    assert lines == CostLine.objects.count() > 0
    assert ImportRun.objects.filter(origin="demo", status="succeeded").count() == 2
    assert AttributionRule.objects.filter(method="even").count() == 1
    allocations = set(CostLine.objects.values_list("allocation", flat=True))
    assert allocations == {"direct", "shared", "unallocated"}
    total = CostLine.objects.aggregate(s=Sum("billed_cost"))["s"]
    assert abs(CostDaily.objects.aggregate(s=Sum("billed_cost"))["s"] - total) < 1e-6
    assert "cost lines over 2 months" in out.getvalue()
