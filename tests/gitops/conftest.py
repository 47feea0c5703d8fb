"""A small configuration tree written by each test, and the repository's actor."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from portal.core.actors import gitops_actor


class TreeWriter:
    def __init__(self, root: Path):
        self.root = root

    def write(self, path: str, text: str) -> Path:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return target

    def remove(self, path: str) -> None:
        (self.root / path).unlink()


@pytest.fixture
def tree(tmp_path) -> TreeWriter:
    return TreeWriter(tmp_path / "config")


@pytest.fixture
def repo():
    return gitops_actor("platform-config")


POLICIES = """
    policies:
      - slug: default
        name: Default
        stages:
          - approver: manager
      - slug: two-step
        name: Two step
        remind_after: 12h
        stages:
          - approver: manager
          - approver: service_owner
            required: 1
"""

SERVICE = """
    slug: billing-db
    name: Billing DB
    owner_team: search
    tier: 1
    entitlements:
      - slug: read
        name: Read
      - slug: write
        name: Write
        risk: high
        policy: two-step
        prerequisites: [billing-db/read]
        seat_cost_monthly: 12.5
"""

PAIRS = """
    toxic_pairs:
      - first: billing-db/write
        second: billing-db/read
        reason: writers do not read
"""


@pytest.fixture
def base_tree(tree, org):
    tree.write("policies.yaml", POLICIES)
    tree.write("services/billing-db.yaml", SERVICE)
    tree.write("toxic_pairs.yaml", PAIRS)
    return tree
