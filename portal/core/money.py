"""Money to the cent, and parts that add up to their whole.

Every amount a person sees is rounded to the cent with :func:`money`. A breakdown (by
service, category, region, resource, team, day) is rounded with :func:`round_parts`, so the
rounded parts sum exactly to the rounded total shown beside them: each part is rounded down,
and the cents still missing go to the parts with the largest remainders (the largest
remainder, or Hamilton, method). Rounding each part on its own can be a cent off per few
parts (119.63 shown as the sum of parts of a 119.62 total).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

CENT = Decimal("0.01")
ZERO = Decimal(0)


def money(value: Decimal | int | None, quantum: Decimal = CENT) -> Decimal:
    """``value`` to the cent (half to even, as the database's totals); ``None`` is 0.00."""
    return Decimal(value or 0).quantize(quantum, rounding=ROUND_HALF_EVEN)


def round_parts(amounts: Sequence[Decimal | None], quantum: Decimal = CENT) -> list[Decimal]:
    """Round ``amounts`` to ``quantum`` so that they sum to ``money(sum(amounts))``.

    Largest remainder: every part is rounded toward minus infinity, then one quantum each is
    added to as many parts as the rounded total still lacks, largest remainder first (the
    earlier part on a tie, so the result is deterministic). Works for negative parts
    (credits). ``None`` counts as zero.
    """
    exact = [Decimal(a or 0) for a in amounts]
    if not exact:
        return []
    total = money(sum(exact, ZERO), quantum)
    floors = [a.quantize(quantum, rounding=ROUND_FLOOR) for a in exact]
    # 0 <= missing <= len(parts): floors lose less than one quantum each, and the
    # rounded total is within half a quantum of the exact one.
    missing = int((total - sum(floors, ZERO)) / quantum)
    by_remainder = sorted(range(len(exact)), key=lambda i: (floors[i] - exact[i], i))
    for i in by_remainder[:missing]:
        floors[i] += quantum
    return floors


def round_field(rows: Iterable[dict], field: str, quantum: Decimal = CENT) -> None:
    """:func:`round_parts` over one field of a list of row dicts, in place (``None`` stays)."""
    rows = [r for r in rows if r.get(field) is not None]
    for row, value in zip(rows, round_parts([r[field] for r in rows], quantum), strict=True):
        row[field] = value
