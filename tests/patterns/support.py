"""Builders for the access-pattern tests: a team with a known who-holds-what matrix."""

from __future__ import annotations

from access.models import Grant
from tests.access.factories import grant_directly, make_entitlement, make_service
from tests.conftest import make_user


def catalog(owner_team, slugs=("read", "write", "admin", "deploy", "logs"), service="pay-db"):
    svc = make_service(owner_team, slug=service)
    risks = {"admin": "critical", "write": "high", "deploy": "medium"}
    return svc, {s: make_entitlement(svc, slug=s, risk=risks.get(s, "low")) for s in slugs}


def people(team, n: int, *, prefix: str = "p", manager=None, **extra):
    return [
        make_user(f"{prefix}{i}@example.com", team=team, manager=manager, **extra) for i in range(n)
    ]


def give(matrix: dict, ents: dict) -> list[Grant]:
    """``matrix``: person -> list of entitlement slugs (active grants)."""
    return [grant_directly(p, ents[s]) for p, slugs in matrix.items() for s in slugs]


def held(user) -> set[str]:
    return set(
        Grant.objects.filter(principal=user, status__in=Grant.HELD_STATUSES).values_list(
            "entitlement__slug", flat=True
        )
    )
