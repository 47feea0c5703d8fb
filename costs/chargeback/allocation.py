"""Each team's allocated cost per line for one month, summing exactly to its summary.

A team's summary (``CostDaily`` over the month's days) holds its directly attributed lines
in full plus its share of every shared-cost rule, which the rollup splits per group of
lines (rule, billing period, day and the rollup's dimensions) with
:func:`costs.attribution.split_amount`. This module hands those group shares back to the
lines:

* a direct (or unallocated) line is allocated in full to its team (or to nobody);
* a shared line gets, for each team of its rule, ``trunc(amount × weight / Σ weights, 12)``
  (the team's share of that line), and the first line (lowest id) of each group takes the
  residue between the team's rollup amount for the group and the sum of those parts, so
  the lines of a group add up to exactly what the rollup gave the team;
* the exact amounts are then rounded to the cent per team with the largest-remainder
  method (:func:`portal.core.money.round_parts`: floors, the missing cents to the largest
  remainders, the lower line id first on a tie), so the rounded lines of a team add up to
  its rounded summary.

On PostgreSQL the whole computation is one SQL statement (window functions; streamed with
a server-side cursor, so memory stays flat for any number of lines). Other databases (the
embedded SQLite default) use :func:`_allocate_python`, the same arithmetic in Python and
in memory. A shared rule with nobody to share with stays unallocated, as in the rollup.

The rows depend on the rollups: after a rule change, re-attribute (which rebuilds them).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import Count

from portal.core.money import ZERO, round_parts

from ..attribution import RuleSpec
from ..models import Allocation, AttributionRule, CostDaily, CostLine
from ..rollups import DIMS, _weights

EXACT = Decimal("1e-12")

# CostLine columns carried to the output (the export writes them as FOCUS columns).
LINE_FIELDS = (
    "id",
    "billing_period_start",
    "billing_period_end",
    "charge_period_start",
    "charge_period_end",
    "billing_account_id",
    "billing_account_name",
    "sub_account_id",
    "sub_account_name",
    "charge_category",
    "charge_class",
    "charge_frequency",
    "charge_description",
    "provider_name",
    "publisher_name",
    "invoice_issuer_name",
    "service_name",
    "service_category",
    "region_id",
    "region_name",
    "availability_zone",
    "resource_id",
    "resource_name",
    "resource_type",
    "sku_id",
    "sku_price_id",
    "pricing_category",
    "pricing_quantity",
    "pricing_unit",
    "consumed_quantity",
    "consumed_unit",
    "billed_cost",
    "effective_cost",
    "list_cost",
    "contracted_cost",
    "list_unit_price",
    "contracted_unit_price",
    "billing_currency",
    "commitment_discount_id",
    "commitment_discount_name",
    "commitment_discount_category",
    "commitment_discount_type",
    "commitment_discount_status",
    "tags",
    "allocation",
    "attributed_service",
    "project",
    "rule_id",
)
# What the allocation adds to each row.
ALLOCATED_FIELDS = (
    "alloc_team_id",
    "share",
    "allocated_billed_exact",
    "allocated_effective_exact",
    "allocated_list_exact",
    "allocated_billed",
    "allocated_effective",
)
FIELDS = LINE_FIELDS + ALLOCATED_FIELDS


@dataclass(frozen=True)
class Scope:
    """Which month and whose rows: ``team_ids`` None = the org (every team and the
    unallocated rows); otherwise only those teams' rows."""

    month: dt.date
    team_ids: tuple[int, ...] | None = None

    @property
    def first(self) -> dt.date:
        return self.month.replace(day=1)

    @property
    def next_first(self) -> dt.date:
        return (self.first + dt.timedelta(days=32)).replace(day=1)


def month_periods(scope: Scope) -> list[dt.date]:
    """Billing periods with a rollup day in the month (partition pruning for the lines)."""
    return sorted(
        CostDaily.objects.filter(day__gte=scope.first, day__lt=scope.next_first)
        .order_by()
        .values_list("billing_period_start", flat=True)
        .distinct()
    )


def split_weights(
    periods: list[dt.date],
) -> list[tuple[dt.date, int, int | None, Decimal, Decimal]]:
    """(period, rule, team, weight, Σ weights) of every shared rule; a rule with nobody to
    share with gets one row (period, rule, None, 1, 1): it stays unallocated."""
    specs = [
        RuleSpec.from_model(r)
        for r in AttributionRule.objects.exclude(method=AttributionRule.Method.DIRECT)
        .prefetch_related("shares")
        .order_by("id")
    ]
    out: list[tuple[dt.date, int, int | None, Decimal, Decimal]] = []
    for period in periods:
        for spec in specs:
            assert spec.id is not None
            weights = _weights(spec, period)
            total = sum((w for _, w in weights), ZERO)
            if not weights or total <= 0:
                out.append((period, spec.id, None, Decimal(1), Decimal(1)))
                continue
            out.extend((period, spec.id, team_id, w, total) for team_id, w in weights)
    return out


# --- PostgreSQL ------------------------------------------------------------------------------


def _half_even_cents(expr: str) -> str:
    """SQL: ``expr`` rounded to the cent half to even (as :func:`portal.core.money.money`)."""
    return (
        f"(CASE WHEN abs(({expr}) * 100 - trunc(({expr}) * 100)) = 0.5 "
        f"AND mod(trunc(({expr}) * 100), 2) = 0 THEN trunc(({expr}), 2) "
        f"ELSE round(({expr}), 2) END)"
    )


def allocation_sql(
    scope: Scope, periods: list[dt.date], weights: list, *, ordered: bool
) -> tuple[str, list[Any]]:
    """The one statement that yields :data:`FIELDS` per (line, receiving team)."""
    params: list[Any] = []
    if weights:
        values = ", ".join(
            ["(%s::date, %s::bigint, %s::bigint, %s::numeric, %s::numeric)"] * len(weights)
        )
        for row in weights:
            params.extend(row)
    else:  # no shared rule: an empty weights table of the right shape
        values = "(NULL::date, NULL::bigint, NULL::bigint, NULL::numeric, NULL::numeric)"
    marks = ", ".join(["%s"] * len(periods))
    dims = ", ".join(DIMS)
    gkey = f"alloc_team_id, billing_period_start, day, {dims}"
    team_filter_direct = team_filter_shared = team_filter_cd = ""
    team_params: list[Any] = []
    if scope.team_ids is not None:
        tmarks = ", ".join(["%s"] * len(scope.team_ids)) or "NULL"
        team_filter_direct = f" AND team_id IN ({tmarks})"
        team_filter_shared = f" AND w.team_id IN ({tmarks})"
        team_filter_cd = f" AND team_id IN ({tmarks})"
        team_params = list(scope.team_ids)
    join_dims = " AND ".join(f"cd.{d} = s.{d}" for d in DIMS)
    # only column names and %s placeholders are interpolated (S608). The windows work on
    # narrow rows (ids, grouping keys, amounts); the wide columns join back at the end.
    narrow = (
        "lines.id, lines.billing_period_start, lines.day, lines.allocation, lines.rule_id, "
        + (", ".join("lines." + d for d in DIMS))
    )
    sql = f"""
WITH w (period, rule_id, team_id, num, den) AS (VALUES {values}),
lines AS MATERIALIZED (
    SELECT l.id, l.billing_period_start, l.allocation, l.rule_id,
           {", ".join("l." + d for d in DIMS)},
           l.billed_cost, l.effective_cost, l.list_cost, l.team_id AS line_team_id,
           (l.charge_period_start AT TIME ZONE 'UTC')::date AS day
    FROM costs_costline l
    WHERE l.billing_period_start IN ({marks})
      AND l.charge_period_start >= %s AND l.charge_period_start < %s
),
direct AS (
    SELECT id, billing_period_start, line_team_id AS alloc_team_id, 1::numeric AS share,
           billed_cost AS a_b, effective_cost AS a_e, COALESCE(list_cost, 0) AS a_l
    FROM lines
    WHERE allocation <> %s{team_filter_direct.replace("team_id", "line_team_id")}
),
parts AS (
    SELECT {narrow}, w.team_id AS alloc_team_id, w.num / w.den AS share,
           trunc(billed_cost * w.num / w.den, 12) AS p_b,
           trunc(effective_cost * w.num / w.den, 12) AS p_e,
           trunc(COALESCE(list_cost, 0) * w.num / w.den, 12) AS p_l
    FROM lines JOIN w ON w.period = lines.billing_period_start AND w.rule_id = lines.rule_id
    WHERE allocation = %s{team_filter_shared}
),
grouped AS (
    SELECT parts.*,
           row_number() OVER (PARTITION BY {gkey} ORDER BY id) AS rn,
           sum(p_b) OVER (PARTITION BY {gkey}) AS g_b,
           sum(p_e) OVER (PARTITION BY {gkey}) AS g_e,
           sum(p_l) OVER (PARTITION BY {gkey}) AS g_l
    FROM parts
),
cd AS (
    SELECT team_id, billing_period_start, day, {dims},
           sum(billed_cost) AS b, sum(effective_cost) AS e, sum(list_cost) AS li
    FROM costs_costdaily
    WHERE allocation = %s AND team_id IS NOT NULL AND billing_period_start IN ({marks})
      AND day >= %s AND day < %s{team_filter_cd}
    GROUP BY team_id, billing_period_start, day, {dims}
),
shared AS (
    SELECT s.id, s.billing_period_start, s.alloc_team_id, s.share,
           s.p_b + CASE WHEN s.rn = 1 AND s.alloc_team_id IS NOT NULL
                        THEN COALESCE(cd.b, 0) - s.g_b ELSE 0 END AS a_b,
           s.p_e + CASE WHEN s.rn = 1 AND s.alloc_team_id IS NOT NULL
                        THEN COALESCE(cd.e, 0) - s.g_e ELSE 0 END AS a_e,
           s.p_l + CASE WHEN s.rn = 1 AND s.alloc_team_id IS NOT NULL
                        THEN COALESCE(cd.li, 0) - s.g_l ELSE 0 END AS a_l
    FROM grouped s
    LEFT JOIN cd ON cd.team_id = s.alloc_team_id
        AND cd.billing_period_start = s.billing_period_start AND cd.day = s.day AND {join_dims}
),
floored AS MATERIALIZED (
    SELECT alloc.*, COALESCE(alloc_team_id, 0) AS tkey,
           floor(a_b * 100) / 100 AS f_b, floor(a_e * 100) / 100 AS f_e
    FROM (SELECT * FROM direct UNION ALL SELECT * FROM shared) alloc
),
missing AS (
    SELECT tkey,
           ({_half_even_cents("sum(a_b)")} - sum(f_b)) * 100 AS m_b,
           ({_half_even_cents("sum(a_e)")} - sum(f_e)) * 100 AS m_e
    FROM floored GROUP BY tkey
),
ranked AS (
    SELECT floored.*,
           row_number() OVER (PARTITION BY tkey ORDER BY a_b - f_b DESC, id) AS r_b,
           row_number() OVER (PARTITION BY tkey ORDER BY a_e - f_e DESC, id) AS r_e
    FROM floored
)
SELECT {", ".join(("l.tags::text" if c == "tags" else "l." + c) for c in LINE_FIELDS)},
       r.alloc_team_id, r.share, r.a_b AS allocated_billed_exact,
       r.a_e AS allocated_effective_exact, r.a_l AS allocated_list_exact,
       r.f_b + CASE WHEN r.r_b <= m.m_b THEN 0.01 ELSE 0 END AS allocated_billed,
       r.f_e + CASE WHEN r.r_e <= m.m_e THEN 0.01 ELSE 0 END AS allocated_effective
FROM ranked r JOIN missing m ON m.tkey = r.tkey
JOIN costs_costline l ON l.id = r.id AND l.billing_period_start = r.billing_period_start
    AND l.billing_period_start IN ({marks})
"""  # noqa: S608
    if ordered:
        sql += " ORDER BY r.tkey, l.charge_period_start, r.id"
    first, nxt = scope.first, scope.next_first
    start = dt.datetime(first.year, first.month, 1, tzinfo=dt.UTC)
    end = dt.datetime(nxt.year, nxt.month, 1, tzinfo=dt.UTC)
    params += [*periods, start, end]
    params += [Allocation.SHARED, *team_params]
    params += [Allocation.SHARED, *team_params]
    params += [Allocation.SHARED, *periods, first, nxt, *team_params]
    params += [*periods]
    return sql, params


def _pg_rows(scope: Scope, *, ordered: bool, limit: int | None, offset: int, chunk: int):
    periods = month_periods(scope)
    if not periods:
        return
    sql, params = allocation_sql(scope, periods, split_weights(periods), ordered=ordered)
    if limit is not None:
        sql += " LIMIT %s OFFSET %s"
        params += [limit, offset]
    # A named (server-side) cursor streams the rows; it needs a transaction.
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL work_mem = '256MB'")
            # the lines have no statistics right after an import: the planner expects one row
            # and picks nested loops (minutes at 1M rows); hash joins are right at every size
            cursor.execute("SET LOCAL enable_nestloop = off")
        raw = connection.connection.cursor(name=f"costs_alloc_{id(scope)}")
        raw.itersize = chunk
        try:
            raw.execute(sql, params)
            while True:
                batch = raw.fetchmany(chunk)
                if not batch:
                    break
                for row in batch:
                    yield dict(zip(FIELDS, row, strict=True))
        finally:
            raw.close()


# --- the same arithmetic in Python (SQLite) --------------------------------------------------


def _allocate_python(scope: Scope) -> list[dict]:
    periods = month_periods(scope)
    if not periods:
        return []
    weights: dict[tuple, list[tuple[int | None, Decimal, Decimal]]] = defaultdict(list)
    for period, rule_id, team_id, num, den in split_weights(periods):
        weights[(period, rule_id)].append((team_id, num, den))
    first, nxt = scope.first, scope.next_first
    start = dt.datetime(first.year, first.month, 1, tzinfo=dt.UTC)
    end = dt.datetime(nxt.year, nxt.month, 1, tzinfo=dt.UTC)
    fields = [f for f in LINE_FIELDS if f != "rule_id"] + ["rule_id", "team_id"]
    lines = CostLine.objects.filter(
        billing_period_start__in=periods,
        charge_period_start__gte=start,
        charge_period_start__lt=end,
    ).order_by("id")
    wanted = None if scope.team_ids is None else set(scope.team_ids)
    rows: list[dict] = []
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for line in lines.values(*fields):
        line["tags"] = line["tags"]
        line["day"] = line["charge_period_start"].astimezone(dt.UTC).date()
        billed, effective = Decimal(line["billed_cost"]), Decimal(line["effective_cost"])
        listed = Decimal(line["list_cost"] or 0)
        if line["allocation"] != Allocation.SHARED:
            if wanted is None or line["team_id"] in wanted:
                rows.append(_row(line, line["team_id"], Decimal(1), billed, effective, listed))
            continue
        for team_id, num, den in weights.get((line["billing_period_start"], line["rule_id"]), []):
            if wanted is not None and team_id not in wanted:
                continue
            row = _row(
                line,
                team_id,
                num / den,
                *(
                    (x * num / den).quantize(EXACT, rounding=ROUND_DOWN)
                    for x in (billed, effective, listed)
                ),
            )
            rows.append(row)
            if team_id is not None:
                key = (team_id, line["billing_period_start"], line["day"], *(line[d] for d in DIMS))
                groups[key].append(row)
    if groups:
        cd = CostDaily.objects.filter(
            allocation=Allocation.SHARED,
            team__isnull=False,
            billing_period_start__in=periods,
            day__gte=first,
            day__lt=nxt,
        )
        sums: dict[tuple, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO, ZERO])
        for r in cd.values(
            "team_id",
            "billing_period_start",
            "day",
            *DIMS,
            "billed_cost",
            "effective_cost",
            "list_cost",
        ):
            key = (r["team_id"], r["billing_period_start"], r["day"], *(r[d] for d in DIMS))
            acc = sums[key]
            acc[0] += Decimal(r["billed_cost"])
            acc[1] += Decimal(r["effective_cost"])
            acc[2] += Decimal(r["list_cost"])
        for key, members in groups.items():
            target = sums.get(key, [ZERO, ZERO, ZERO])
            head = members[0]  # lines were read by id: the lowest id takes the residue
            for i, name in enumerate(
                ("allocated_billed_exact", "allocated_effective_exact", "allocated_list_exact")
            ):
                head[name] += target[i] - sum((m[name] for m in members), ZERO)
    by_team: dict[int, list[dict]] = defaultdict(list)
    for row in rows:
        by_team[row["alloc_team_id"] or 0].append(row)
    out: list[dict] = []
    for tkey in sorted(by_team):
        members = sorted(by_team[tkey], key=lambda r: r["id"])
        for exact, cents in (
            ("allocated_billed_exact", "allocated_billed"),
            ("allocated_effective_exact", "allocated_effective"),
        ):
            for row, value in zip(members, round_parts([m[exact] for m in members]), strict=True):
                row[cents] = value
        out.extend(sorted(members, key=lambda r: (r["charge_period_start"], r["id"])))
    return out


def _row(line: dict, team_id, share, billed, effective, listed) -> dict:
    row = {f: line[f] for f in LINE_FIELDS}
    row.update(
        alloc_team_id=team_id,
        share=share,
        allocated_billed_exact=billed,
        allocated_effective_exact=effective,
        allocated_list_exact=listed,
        allocated_billed=ZERO,
        allocated_effective=ZERO,
    )
    return row


# --- entry points ----------------------------------------------------------------------------


def allocated_rows(scope: Scope, *, chunk: int = 5000) -> Iterator[dict]:
    """Every allocated row of ``scope`` (streamed on PostgreSQL), grouped by team."""
    if connection.vendor == "postgresql":
        yield from _pg_rows(scope, ordered=False, limit=None, offset=0, chunk=chunk)
    else:
        yield from _allocate_python(scope)


class AllocatedPage:
    """A sliceable, countable view for the API's paginator (ordered by team, charge time, id)."""

    def __init__(self, scope: Scope):
        self.scope = scope
        self._count: int | None = None

    def count(self) -> int:
        if self._count is None:
            if connection.vendor == "postgresql":
                self._count = _pg_count(self.scope)
            else:
                self._count = len(_allocate_python(self.scope))
        return self._count

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, item: slice) -> list[dict]:
        start, stop = item.start or 0, item.stop
        if connection.vendor == "postgresql":
            limit = None if stop is None else max(0, stop - start)
            return list(_pg_rows(self.scope, ordered=True, limit=limit, offset=start, chunk=1000))
        return _allocate_python(self.scope)[start:stop]


def _pg_count(scope: Scope) -> int:
    """Rows of the scope without computing them: direct lines + shared lines × their teams."""
    periods = month_periods(scope)
    if not periods:
        return 0
    first, nxt = scope.first, scope.next_first
    start = dt.datetime(first.year, first.month, 1, tzinfo=dt.UTC)
    end = dt.datetime(nxt.year, nxt.month, 1, tzinfo=dt.UTC)
    lines = CostLine.objects.filter(
        billing_period_start__in=periods,
        charge_period_start__gte=start,
        charge_period_start__lt=end,
    ).order_by()
    direct = lines.exclude(allocation=Allocation.SHARED)
    if scope.team_ids is not None:
        direct = direct.filter(team_id__in=scope.team_ids)
    total = direct.count()
    shared_counts: dict[tuple, int] = {}
    for period, rule_id, n in (
        lines.filter(allocation=Allocation.SHARED)
        .values("billing_period_start", "rule_id")
        .annotate(n=Count("id"))
        .values_list("billing_period_start", "rule_id", "n")
    ):
        shared_counts[(period, rule_id)] = n
    for period, rule_id, team_id, _num, _den in split_weights(periods):
        if scope.team_ids is not None and team_id not in scope.team_ids:
            continue
        total += shared_counts.get((period, rule_id), 0)
    return total
