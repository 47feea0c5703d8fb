"""The demo's one clock helper: move the timestamps of rows the demo made into the past.

The demo writes its history *now*, in chronological order, through the product's services
(so every row and audit event is real), and only then gives it its dates: a request of
"four months ago" is submitted and decided today and back-dated here. Nothing else in the
demo writes a timestamp or calls ``update()``/``bulk_update()``; keep it that way, so a
reader finds every rewrite of history in this file.

Only the columns in :data:`BACKDATABLE` can be moved. The audit events keep the real time
at which the demo wrote them (the audit table is append-only), so the trail shows when the
demo ran, and the rows show the story it tells.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from django.db import models

BACKDATABLE = frozenset({"created_at", "decided_at", "starts_at"})


def backdate(
    model: type[models.Model],
    stamps: Mapping[int, Mapping[str, datetime]],
    *,
    batch_size: int = 500,
) -> int:
    """Set ``{pk: {field: when}}`` on rows of ``model`` that the demo has just made.

    Every row names the same fields, each one a ``DateTimeField`` in :data:`BACKDATABLE`;
    anything else is a programming error and raises ``ValueError`` before any write.
    Returns the number of rows written. Use it only on the demo's own rows, inside the step
    that made them.
    """
    if not stamps:
        return 0
    fields = set(next(iter(stamps.values())))
    for pk, row in stamps.items():
        if set(row) != fields:
            raise ValueError(f"backdate: row {pk} names {sorted(row)}, not {sorted(fields)}")
    unknown = fields - BACKDATABLE
    if unknown or not fields:
        raise ValueError(f"backdate: {sorted(unknown) or 'no field'}: not a back-datable field")
    for name in fields:
        if not isinstance(model._meta.get_field(name), models.DateTimeField):
            raise ValueError(f"backdate: {model.__name__}.{name} is not a DateTimeField")
    rows = model._default_manager.in_bulk(list(stamps))
    missing = set(stamps) - set(rows)
    if missing:
        raise ValueError(f"backdate: no {model.__name__} with pk {sorted(missing)[:5]}")
    for pk, row in stamps.items():
        for name, when in row.items():
            setattr(rows[pk], name, when)
    model._default_manager.bulk_update(rows.values(), sorted(fields), batch_size=batch_size)
    return len(rows)
