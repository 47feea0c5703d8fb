"""Plotly figures of the cost pages: pure functions from selector output to a figure.

Each returns a plain Plotly figure dict (``{"data": [...], "layout": {...}}``), the JSON the
vendored plotly.js draws; the tests validate every figure with ``plotly.graph_objects``.
Plain dicts keep a page's server time low (no per-request validation).
"""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import urlencode

BASE_LAYOUT = {
    "margin": {"l": 60, "r": 20, "t": 40, "b": 40},
    "height": 320,
    "hovermode": "closest",
    "legend": {"orientation": "h", "y": -0.2},
    "font": {"size": 12},
}


def _f(value) -> float:
    return float(value) if isinstance(value, Decimal) else float(value or 0)


def _layout(title: str, **extra) -> dict:
    return {**BASE_LAYOUT, "title": {"text": title}, **extra}


def daily_trend(
    daily, compare_daily=None, *, currency: str = "USD", compare_label: str = ""
) -> dict:
    data = [
        {
            "type": "bar",
            "name": "Daily cost",
            "x": [d.isoformat() for d, _ in daily],
            "y": [_f(v) for _, v in daily],
        }
    ]
    if compare_daily:
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": compare_label or "Comparison period",
                "x": [d.isoformat() for d, _ in daily],
                "y": [_f(v) for _, v in compare_daily],
                "customdata": [d.isoformat() for d, _ in compare_daily],
                "hovertemplate": "%{customdata}: %{y:,.2f}<extra></extra>",
            }
        )
    return {"data": data, "layout": _layout("Daily cost", yaxis={"title": {"text": currency}})}


def monthly_trend(monthly, *, currency: str = "USD") -> dict:
    x = [m["month"].strftime("%Y-%m") for m in monthly]
    data = [{"type": "bar", "name": "Billed cost", "x": x, "y": [_f(m["billed"]) for m in monthly]}]
    if any(m["budget"] is not None for m in monthly):
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "line": {"shape": "hv", "dash": "dash"},
                "name": "Budget",
                "x": x,
                "y": [_f(m["budget"]) if m["budget"] is not None else None for m in monthly],
            }
        )
    return {"data": data, "layout": _layout("Monthly cost", yaxis={"title": {"text": currency}})}


def budget_burn(cumulative: dict, *, currency: str = "USD") -> dict:
    data = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": "Actual (cumulative)",
            "x": [d.isoformat() for d, _ in cumulative["actual"]],
            "y": [_f(v) for _, v in cumulative["actual"]],
        }
    ]
    if cumulative["forecast"]:
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "line": {"dash": "dash"},
                "name": "Forecast",
                "x": [d.isoformat() for d, _ in cumulative["forecast"]],
                "y": [_f(v) for _, v in cumulative["forecast"]],
            }
        )
    if cumulative["pace"]:
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "line": {"dash": "dot"},
                "name": "Budget pace",
                "x": [d.isoformat() for d, _ in cumulative["pace"]],
                "y": [_f(v) for _, v in cumulative["pace"]],
            }
        )
    return {
        "data": data,
        "layout": _layout("Budget burn this month", yaxis={"title": {"text": currency}}),
    }


def breakdown_bar(
    rows,
    *,
    title: str,
    drill_base: str = "",
    dim: str = "",
    extra: dict | None = None,
    limit: int = 15,
) -> dict:
    """Horizontal bars, largest on top; each bar carries its drill-down URL (customdata)."""
    rows = list(rows)[:limit][::-1]
    urls = []
    for r in rows:
        if drill_base:
            urls.append(
                f"{drill_base}?{urlencode({'dim': dim, 'value': r['key'], **(extra or {})})}"
            )
        else:
            urls.append("")
    trace = {
        "type": "bar",
        "orientation": "h",
        "name": title,
        "x": [_f(r["amount"]) for r in rows],
        "y": [str(r["key"])[-60:] for r in rows],
        "customdata": urls,
        "hovertemplate": "%{y}: %{x:,.2f}<extra></extra>",
    }
    height = max(240, 40 + 24 * len(rows))
    return {
        "data": [trace],
        "layout": _layout(title, height=height, margin={"l": 260, "r": 20, "t": 40, "b": 40}),
    }


def share_donut(rows, *, title: str) -> dict:
    rows = list(rows)
    return {
        "data": [
            {
                "type": "pie",
                "hole": 0.5,
                "labels": [str(r["key"]) for r in rows],
                "values": [_f(r["amount"]) for r in rows],
                "sort": False,
            }
        ],
        "layout": _layout(title),
    }


def org_ranked(ranked, *, limit: int = 25) -> dict:
    rows = list(ranked)[:limit][::-1]
    return {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "name": "This month",
                "x": [_f(r["amount"]) for r in rows],
                "y": [r["team"].slug if r["team"] else "?" for r in rows],
            },
            {
                "type": "bar",
                "orientation": "h",
                "name": "Previous month (same days)",
                "x": [_f(r["prev"]) for r in rows],
                "y": [r["team"].slug if r["team"] else "?" for r in rows],
            },
        ],
        "layout": _layout(
            "Teams ranked by cost",
            barmode="group",
            height=max(320, 40 + 36 * len(rows)),
            margin={"l": 140, "r": 20, "t": 40, "b": 40},
        ),
    }


def coverage_trend(coverage) -> dict:
    rows = [r for r in coverage if r["coverage"] is not None]
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "Allocation coverage",
                "x": [r["period"].strftime("%Y-%m") for r in rows],
                "y": [round(_f(r["coverage"]), 2) for r in rows],
            }
        ],
        "layout": _layout(
            "Allocation coverage over time", yaxis={"title": {"text": "%"}, "range": [0, 100]}
        ),
    }


def commitment_trend(trend) -> dict:
    """Utilisation and coverage per month (percent), with the unused cost as bars."""
    x = [t["month"].strftime("%Y-%m") for t in trend]

    def pct(values):
        return [None if v is None else float(v) for v in values]

    data = [
        {
            "type": "bar",
            "name": "Unused commitment cost",
            "x": x,
            "y": [_f(t["unused"]) for t in trend],
            "yaxis": "y2",
            "opacity": 0.4,
        },
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "Utilisation %",
            "x": x,
            "y": pct(t["utilisation_pct"] for t in trend),
        },
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "Coverage %",
            "x": x,
            "y": pct(t["coverage_pct"] for t in trend),
        },
    ]
    return {
        "data": data,
        "layout": _layout(
            "Commitment utilisation and coverage",
            yaxis={"title": {"text": "%"}, "range": [0, 105]},
            yaxis2={"title": {"text": "unused"}, "overlaying": "y", "side": "right"},
        ),
    }


def unit_cost_trend(metric, series) -> dict:
    """The team's daily cost (bars) next to its cost per unit of a business metric (line)."""
    x = [p["day"].isoformat() for p in series]
    return {
        "data": [
            {"type": "bar", "name": "Daily cost", "x": x, "y": [_f(p["cost"]) for p in series]},
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": f"Cost per {metric.unit}",
                "x": x,
                "y": [None if p["unit_cost"] is None else float(p["unit_cost"]) for p in series],
                "yaxis": "y2",
                "connectgaps": False,
            },
        ],
        "layout": _layout(
            f"Cost per {metric.unit} ({metric.name})",
            yaxis={"title": {"text": "cost"}},
            yaxis2={"title": {"text": f"per {metric.unit}"}, "overlaying": "y", "side": "right"},
        ),
    }
