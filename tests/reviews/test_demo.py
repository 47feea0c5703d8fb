import io
import random

import pytest

from access.models import Grant
from demo.steps.reviews import seed_reviews
from reviews.models import Campaign
from tests.access.factories import grant_directly, make_entitlement, make_service
from tests.conftest import make_user


@pytest.mark.django_db
def test_demo_campaign_covers_the_payments_teams_active_grants(org, requester, manager):
    make_user("security@tollgate.test", team=org["platform"], roles=["security"])
    grant = grant_directly(requester, make_entitlement(make_service(org["search"])))
    out = io.StringIO()
    seed_reviews(stdout=out, rng=random.Random(1))
    campaign = Campaign.objects.get()
    assert campaign.status == Campaign.Status.ACTIVE
    assert list(campaign.items.values_list("grant_id", flat=True)) == [grant.pk]
    assert Grant.objects.get(pk=grant.pk).status == "active"
    seed_reviews(stdout=out, rng=random.Random(1))
    assert Campaign.objects.count() == 1
    assert "already exists; skipped" in out.getvalue()
