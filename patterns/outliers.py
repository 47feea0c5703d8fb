"""Outlier scoring (feature P3): pure functions, no Django imports.

An access is *unusual* for a person when few of their peers hold it in **every** peer group
we know (their team, the people under their manager, their worker type as the job-family
stand-in): access that is common in any one of those groups has an obvious explanation.

    score = (1 - max share of peers holding it, over the groups) x risk weight

A grant is an outlier when that largest share is at most ``RARE_SHARE`` and the largest group
has at least ``MIN_PEERS`` peers (a team of two proves nothing). People whose access differs
most from their team's are ranked by the Jaccard distance between what they hold and their
team's *common set* (what at least half the team holds).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

RISK_WEIGHT = {"low": 0.4, "medium": 0.6, "high": 0.85, "critical": 1.0}
RARE_SHARE = 0.2
MIN_PEERS = 3
COMMON_SET_SHARE = 0.5


class Counts(Protocol):
    def get(self, entitlement_id: int, default: int = 0, /) -> int: ...


@dataclass(frozen=True)
class PeerGroup:
    """Peers of one person (the person excluded) and how many of them hold each entitlement."""

    kind: str  # "team", "manager", "worker_type"
    label: str  # plural noun phrase: "teammates", "people under Dana", "contractors"
    size: int
    counts: Counts | Mapping[int, int]


@dataclass
class Finding:
    entitlement_id: int
    score: float
    share: float  # the largest share of peers holding it, over the groups
    explanations: list[str] = field(default_factory=list)


def score_access(
    *,
    entitlement_id: int,
    entitlement_label: str,
    risk: str,
    groups: list[PeerGroup],
    rare_share: float = RARE_SHARE,
    min_peers: int = MIN_PEERS,
    explain: bool = True,
) -> Finding | None:
    """The finding for one held entitlement, or None when it is not an outlier."""
    top, biggest = 0.0, 0
    for g in groups:  # a plain loop: this runs once per grant in view, most are not outliers
        if g.size <= 0:
            continue
        share = g.counts.get(entitlement_id, 0) / g.size
        if share > rare_share:
            return None
        if share > top:
            top = share
        if g.size > biggest:
            biggest = g.size
    if biggest < min_peers:
        return None
    weight = RISK_WEIGHT.get(risk, RISK_WEIGHT["medium"])
    return Finding(
        entitlement_id=entitlement_id,
        score=round((1 - top) * weight, 3),
        share=round(top, 3),
        explanations=explain_access(
            entitlement_id=entitlement_id, entitlement_label=entitlement_label, groups=groups
        )
        if explain
        else [],
    )


def explain_access(
    *, entitlement_id: int, entitlement_label: str, groups: list[PeerGroup]
) -> list[str]:
    """One plain sentence per peer group: "1 of 14 teammates holds payments-db:admin"."""
    out = []
    for g in groups:
        if g.size <= 0:
            continue
        n = g.counts.get(entitlement_id, 0)
        verb = "holds" if n == 1 else "hold"
        out.append(f"{n} of {g.size} {g.label} {verb} {entitlement_label}")
    return out


def common_set(held: Mapping[int, set[int]], members: list[int], share: float = COMMON_SET_SHARE):
    """Entitlements held by at least ``share`` of ``members``."""
    if not members:
        return set()
    counts: dict[int, int] = {}
    for u in members:
        for e in held.get(u, ()):
            counts[e] = counts.get(e, 0) + 1
    need = share * len(members)
    return {e for e, n in counts.items() if n >= need}


def jaccard_distance(a: set, b: set) -> float:
    """1 - |a ∩ b| / |a ∪ b|; two empty sets are identical (0)."""
    union = a | b
    if not union:
        return 0.0
    return round(1 - len(a & b) / len(union), 3)
