"""Demo step ``reviews``: an active review campaign of the payments team's access, due in ten days,
reviewed by managers (so manager@tollgate.test has items on first start)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from accounts.models import Team, User
from reviews.models import Campaign
from reviews.services import campaign_create, campaign_start


def seed_reviews(*, stdout, rng) -> None:
    if Campaign.objects.exists():
        stdout.write("reviews: a campaign already exists; skipped\n")
        return
    team = Team.objects.filter(slug="payments").first()
    security = User.objects.filter(email="security@tollgate.test").first()
    if team is None or security is None:
        stdout.write("reviews: demo team or security account missing; skipped\n")
        return
    now = timezone.now()
    campaign = campaign_create(
        actor=security,
        name="Payments quarterly access review",
        scope=Campaign.Scope.TEAM,
        reviewer_rule=Campaign.Reviewer.MANAGER,
        starts_at=now,
        deadline=now + timedelta(days=10),
        deadline_action=Campaign.DeadlineAction.ESCALATE,
        team=team,
    )
    campaign = campaign_start(actor=security, campaign_id=campaign.pk, now=now)
    stdout.write(f"reviews: campaign #{campaign.pk} started with {campaign.items.count()} items\n")
