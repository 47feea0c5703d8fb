"""Tollgate data -> rows for ``recommend.model``, and a model's reasons in words.

A row describes "principal P asks for entitlement E at time T": P's team, manager and worker
type; E, its service and risk; whether the service belongs to P's own team; and the peer
signals — the share of P's teammates, and of P's manager's other reports, holding E at T
(from grant start/end dates, so training rows see the peers as they were when decided).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from access.models import Entitlement, Grant
from accounts.models import User

from .model import RARE, Contribution, FeatureSpec

NONE = "(none)"

SPEC = FeatureSpec(
    categorical=(
        "team",
        "manager",
        "worker_type",
        "entitlement",
        "service",
        "risk",
        "own_service",
        "team_band",
        "manager_band",
    ),
    pairs=(
        ("team", "entitlement"),
        ("manager", "entitlement"),
        ("worker_type", "entitlement"),
        ("team", "service"),
        ("team", "risk"),
        ("worker_type", "risk"),
        ("team_band", "risk"),
        ("manager_band", "risk"),
        ("team_band", "entitlement"),
    ),
    numeric=("team_share", "manager_share"),
    C=1.0,
)

# Statuses in which a grant has been held at some point (pending/failed never were).
_HELD_AT_SOME_POINT = (
    Grant.Status.ACTIVE,
    Grant.Status.REVOKING,
    Grant.Status.REVOKE_FAILED,
    Grant.Status.REVOKED,
)


def band(holders: int, size: int) -> str:
    if not size:
        return "no peers"
    share = holders / size
    if share == 0:
        return "none"
    if share < 0.25:
        return "under 25%"
    if share < 0.5:
        return "25-50%"
    if share < 0.75:
        return "50-75%"
    return "75% or more"


class RowBuilder:
    """Loads people and grants once, then builds rows for (principal, entitlement, when)."""

    def __init__(self, *, principal_ids: Iterable[int], entitlement_ids: Iterable[int]):
        principal_ids = set(principal_ids)
        entitlement_ids = set(entitlement_ids)
        principals = {
            u["pk"]: u
            for u in User.objects.filter(pk__in=principal_ids).values(
                "pk", "team_id", "team__slug", "manager_id", "manager__email", "worker_type"
            )
        }
        team_ids = {u["team_id"] for u in principals.values() if u["team_id"]}
        manager_ids = {u["manager_id"] for u in principals.values() if u["manager_id"]}
        self.principals = principals
        self.team_members: dict[int, set[int]] = defaultdict(set)
        self.reports: dict[int, set[int]] = defaultdict(set)
        people = User.objects.filter(is_active=True).filter(
            Q(team_id__in=team_ids) | Q(manager_id__in=manager_ids)
        )
        for pk, team_id, manager_id in people.values_list("pk", "team_id", "manager_id"):
            if team_id in team_ids:
                self.team_members[team_id].add(pk)
            if manager_id in manager_ids:
                self.reports[manager_id].add(pk)
        self.entitlements = {
            e["pk"]: e
            for e in Entitlement.objects.filter(pk__in=entitlement_ids).values(
                "pk", "slug", "risk", "service__slug", "service__owner_team_id"
            )
        }
        # entitlement -> [(principal, held from, held until or None)]
        self.holdings: dict[int, list[tuple[int, datetime, datetime | None]]] = defaultdict(list)
        for principal_id, ent_id, starts_at, ends_at, revoked_at, status in Grant.objects.filter(
            entitlement_id__in=entitlement_ids, status__in=_HELD_AT_SOME_POINT
        ).values_list(
            "principal_id", "entitlement_id", "starts_at", "ends_at", "revoked_at", "status"
        ):
            until = revoked_at if revoked_at is not None else ends_at
            if status == Grant.Status.REVOKED and until is None:
                continue
            self.holdings[ent_id].append((principal_id, starts_at, until))

    def _holders(self, ent_id: int, people: set[int], at: datetime) -> int:
        return len(
            {
                p
                for p, start, until in self.holdings.get(ent_id, ())
                if p in people and start <= at and (until is None or until > at)
            }
        )

    def row(self, *, principal_id: int, entitlement_id: int, at: datetime | None = None) -> dict:
        at = at or timezone.now()
        person = self.principals[principal_id]
        ent = self.entitlements[entitlement_id]
        teammates = self.team_members.get(person["team_id"], set()) - {principal_id}
        colleagues = self.reports.get(person["manager_id"], set()) - {principal_id}
        team_holders = self._holders(entitlement_id, teammates, at)
        mgr_holders = self._holders(entitlement_id, colleagues, at)
        return {
            "team": person["team__slug"] or NONE,
            "manager": person["manager__email"] or NONE,
            "worker_type": person["worker_type"],
            "entitlement": f"{ent['service__slug']}:{ent['slug']}",
            "service": ent["service__slug"],
            "risk": ent["risk"],
            "own_service": "yes"
            if person["team_id"] and person["team_id"] == ent["service__owner_team_id"]
            else "no",
            "team_band": band(team_holders, len(teammates)),
            "manager_band": band(mgr_holders, len(colleagues)),
            "team_share": team_holders / len(teammates) if teammates else 0.0,
            "manager_share": mgr_holders / len(colleagues) if colleagues else 0.0,
            # Shown in reasons, not used as features.
            "team_holders": team_holders,
            "team_size": len(teammates),
            "manager_holders": mgr_holders,
            "manager_size": len(colleagues),
        }


# --- Reasons in words -------------------------------------------------------------------
def _part(column: str, value: str) -> str:
    if column == "team":
        return f"from team {value}"
    if column == "manager":
        return f"from {value}'s reports"
    if column == "worker_type":
        return f"by {value}s"
    if column == "entitlement":
        return f"for {value}"
    if column == "service":
        return f"on {value}"
    if column == "risk":
        return f"of {value} risk"
    if column == "own_service":
        return "for the team's own service" if value == "yes" else "for another team's service"
    if column == "team_band":
        return f"where {value} of the team held it"
    if column == "manager_band":
        return f"where {value} of the manager's reports held it"
    return f"with {column} {value}"


_ORDER = (
    "entitlement",
    "service",
    "own_service",
    "team",
    "manager",
    "worker_type",
    "team_band",
    "manager_band",
)


def _subject(values: dict[str, str]) -> str:
    """E.g. "high-risk requests for billing:read from team payments"."""
    head = f"{values['risk']}-risk requests" if "risk" in values else "requests"
    parts = [_part(c, values[c]) for c in _ORDER if c in values]
    parts += [_part(c, v) for c, v in values.items() if c not in _ORDER and c != "risk"]
    return " ".join([head, *parts])


def describe(contribution: Contribution, row: dict) -> str:
    feature = contribution.feature
    if feature.values is None:  # numeric peer share
        if feature.group == ("team_share",):
            return f"{row['team_holders']} of {row['team_size']} teammates hold it"
        return f"{row['manager_holders']} of {row['manager_size']} of the manager's other reports hold it"
    if feature.values == (RARE,):
        return "rarely seen before: " + _subject({c: str(row[c]) for c in feature.group})
    return f"{_subject(dict(zip(feature.group, feature.values, strict=True)))} were approved {contribution.approved}/{contribution.seen}"


def reasons(contributions: list[Contribution], row: dict) -> list[dict]:
    return [
        {
            "text": describe(c, row),
            "direction": "for" if c.weight > 0 else "against",
            "weight": round(c.weight, 3),
        }
        for c in contributions
    ]
