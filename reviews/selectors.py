"""Reads of access reviews, scoped by what the viewer may see."""

from __future__ import annotations

from collections import Counter

from django.db.models import Q, QuerySet

from access.policies import is_security
from access.selectors import peers_holding
from portal.core.errors import NotFound

from .models import Campaign, ReviewItem
from .policies import sees_all_campaigns


def _reviewer_q(viewer, prefix: str = "") -> Q:
    team_ids = set(viewer.memberships.values_list("team_id", flat=True))
    if viewer.team_id:
        team_ids.add(viewer.team_id)
    q = (
        Q(**{f"{prefix}reviewer": viewer})
        | Q(**{f"{prefix}escalated_to": viewer})
        | Q(**{f"{prefix}reviewer_team_id__in": team_ids})
    )
    if is_security(viewer):
        q |= Q(**{f"{prefix}to_security": True})
    return q


def review_items_for_viewer(*, viewer) -> QuerySet[ReviewItem]:
    """Items the viewer may answer (any status), never the viewer's own access."""
    return (
        ReviewItem.objects.filter(_reviewer_q(viewer))
        .exclude(principal=viewer)
        .select_related(
            "campaign", "principal", "entitlement__service", "reviewer", "reviewer_team"
        )
    )


def my_open_items(*, viewer) -> QuerySet[ReviewItem]:
    return review_items_for_viewer(viewer=viewer).filter(
        status=ReviewItem.Status.PENDING, campaign__status=Campaign.Status.ACTIVE
    )


def my_open_rows(*, viewer, peers_limit: int = 5) -> list[dict]:
    """The reviewer page: who, what, since when, last used, peers who hold it."""
    rows = []
    for item in my_open_items(viewer=viewer).order_by("campaign__deadline", "pk"):
        peers = peers_holding(
            principal=item.principal, entitlement=item.entitlement, limit=peers_limit
        )
        rows.append({"item": item, "peers": peers})
    return rows


def campaigns_for_viewer(*, viewer) -> QuerySet[Campaign]:
    qs = Campaign.objects.all()
    if sees_all_campaigns(viewer):
        return qs
    ids = (
        ReviewItem.objects.filter(_reviewer_q(viewer))
        .exclude(principal=viewer)
        .values("campaign_id")
    )
    return qs.filter(pk__in=ids)


def campaign_get(*, viewer, pk: int) -> Campaign:
    campaign = campaigns_for_viewer(viewer=viewer).filter(pk=pk).first()
    if campaign is None:
        raise NotFound("no such campaign")
    return campaign


def review_item_get(*, viewer, pk: int) -> ReviewItem:
    item = review_items_for_viewer(viewer=viewer).filter(pk=pk).first()
    if item is None:
        raise NotFound("no such review item")
    return item


def campaign_progress(*, campaign: Campaign) -> dict:
    """Overall and per-reviewer counts: total, answered, open."""
    items = campaign.items.select_related("reviewer", "reviewer_team", "escalated_to")
    overall: Counter = Counter()
    per: dict[str, Counter] = {}
    for item in items:
        overall[item.status] += 1
        who = item.escalated_to.email if item.escalated_to_id else item.reviewer_label
        per.setdefault(who, Counter())[item.status] += 1

    def summary(counts: Counter) -> dict:
        total = sum(counts.values())
        done = total - counts.get(ReviewItem.Status.PENDING, 0)
        return {
            "total": total,
            "done": done,
            "open": total - done,
            "kept": counts.get(ReviewItem.Status.KEPT, 0),
            "revoked": counts.get(ReviewItem.Status.REVOKED, 0),
            "escalated": counts.get(ReviewItem.Status.ESCALATED, 0),
            "percent": round(100 * done / total) if total else 100,
        }

    return {
        "overall": summary(overall),
        "reviewers": [{"reviewer": k, **summary(v)} for k, v in sorted(per.items())],
    }
