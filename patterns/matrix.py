"""Pure functions over a "who holds what" matrix (feature P1): ordering rows and columns so
that people with similar access sit together, and comparing one person with their team.

No Django imports: the selectors load the data, these order and compare it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

# Peer comparison: what the person holds that at most this share of teammates hold is
# "unusual"; what at least COMMON_SHARE of teammates hold and the person lacks is "missing".
UNUSUAL_SHARE = 0.25
COMMON_SHARE = 0.75


def _seriate_rows(rows: Iterable, held: Mapping, col_rank: Mapping) -> list:
    """Rows by their access pattern read left to right over the ordered columns: people
    holding the first (most common) columns come first, identical patterns sit together."""

    def key(r):
        bits = 0
        for c in held.get(r, ()):
            rank = col_rank.get(c)
            if rank is not None:
                bits |= 1 << (len(col_rank) - rank)
        return bits

    return sorted(rows, key=lambda r: (-key(r), r))


def seriate(
    held: Mapping[int, set[int]],
    *,
    rows: Sequence[int],
    cols: Sequence[int],
    roles: Sequence[tuple[Sequence[int], Sequence[int]]] = (),
) -> tuple[list[int], list[int], str]:
    """Order ``rows`` and ``cols`` for display; returns (rows, cols, method).

    With mined ``roles`` (user ids, entitlement ids), largest first: columns in the order
    they first appear in a role, rows grouped by the first role they are in ("roles").
    Without: columns by how many hold them (most first), rows by their pattern over those
    columns ("frequency"). Rows and columns missing from the roles follow, in the same way.
    """
    counts = Counter(c for r in rows for c in held.get(r, ()))
    by_frequency = sorted(cols, key=lambda c: (-counts.get(c, 0), c))
    col_set, row_set = set(cols), set(rows)
    if not roles:
        rank = {c: i for i, c in enumerate(by_frequency)}
        return _seriate_rows(rows, held, rank), by_frequency, "frequency"
    ordered_roles = sorted(roles, key=lambda role: -(len(role[0]) * len(role[1])))
    col_order: list[int] = []
    seen_cols: set[int] = set()
    for _, ents in ordered_roles:
        for c in sorted(ents, key=lambda c: (-counts.get(c, 0), c)):
            if c in col_set and c not in seen_cols:
                seen_cols.add(c)
                col_order.append(c)
    col_order += [c for c in by_frequency if c not in seen_cols]
    rank = {c: i for i, c in enumerate(col_order)}
    row_order: list[int] = []
    seen_rows: set[int] = set()
    for users, _ in ordered_roles:
        group = [u for u in users if u in row_set and u not in seen_rows]
        seen_rows.update(group)
        row_order += _seriate_rows(group, held, rank)
    row_order += _seriate_rows([r for r in rows if r not in seen_rows], held, rank)
    return row_order, col_order, "roles"


@dataclass
class PeerLine:
    entitlement_id: int
    holders: int  # teammates (not counting the person) who hold it
    teammates: int

    @property
    def share(self) -> float:
        return self.holders / self.teammates if self.teammates else 0.0


@dataclass
class PeerComparison:
    teammates: int
    unusual: list[PeerLine] = field(default_factory=list)  # held; few teammates hold it
    missing: list[PeerLine] = field(default_factory=list)  # not held; most teammates hold it
    usual: int = 0  # held and common enough


def compare_with_team(
    person: int,
    held: Mapping[int, set[int]],
    team: Sequence[int],
    *,
    unusual_share: float = UNUSUAL_SHARE,
    common_share: float = COMMON_SHARE,
) -> PeerComparison:
    """The person's access against their teammates' (everyone in ``team`` but the person)."""
    mates = [u for u in team if u != person]
    counts = Counter(c for u in mates for c in held.get(u, ()))
    mine = held.get(person, set())
    result = PeerComparison(teammates=len(mates))
    if not mates:
        return result
    for ent in sorted(mine, key=lambda c: (counts.get(c, 0), c)):
        line = PeerLine(ent, counts.get(ent, 0), len(mates))
        if line.share <= unusual_share:
            result.unusual.append(line)
        else:
            result.usual += 1
    for ent, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if ent not in mine and n / len(mates) >= common_share:
            result.missing.append(PeerLine(ent, n, len(mates)))
    return result
