"""The reviews app's items on the home page's to-do list (see portal.core.home)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Count, Min
from django.urls import reverse
from django.utils import timezone

from portal.core.home import HomeItem, HomeProvider, register

from .selectors import my_open_items


def reviews_waiting(user: Any) -> list[HomeItem]:
    """One line per active campaign with items the viewer has to answer."""
    now = timezone.now()
    campaigns = (
        my_open_items(viewer=user)
        .order_by()
        .values("campaign_id", "campaign__name")
        .annotate(n=Count("pk"), deadline=Min("campaign__deadline"))
        .order_by("deadline", "campaign_id")
    )
    url = reverse("reviews:mine")
    rows = []
    for c in campaigns[:5]:
        days = max(0, (c["deadline"] - now) // timedelta(days=1))
        rows.append(
            HomeItem(
                kind="Review",
                title=c["campaign__name"],
                url=url,
                detail=f"{c['n']} access item{'s' if c['n'] != 1 else ''} to keep or remove",
                badge="due today" if days == 0 else f"due in {days} day{'s' if days != 1 else ''}",
                action_label="Review",
                action_url=url,
            )
        )
    return rows


register(HomeProvider(key="reviews.waiting", section="waiting", items=reviews_waiting, order=20))
