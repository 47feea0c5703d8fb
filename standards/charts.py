"""Plotly figures of the compliance pages: pure functions from selector output to a figure
dict (the JSON the vendored plotly.js draws), like costs/charts.py."""

from __future__ import annotations

BASE_LAYOUT = {
    "margin": {"l": 50, "r": 20, "t": 40, "b": 40},
    "height": 300,
    "hovermode": "x unified",
    "legend": {"orientation": "h", "y": -0.25},
    "font": {"size": 12},
}


def compliance_over_time(series: dict[str, list], *, title: str = "Compliance over time") -> dict:
    """``series``: {name: [(taken_at, score %), ...]} → one line per name."""
    data = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": name,
            "x": [t.isoformat() for t, _ in points],
            "y": [score for _, score in points],
            "hovertemplate": "%{y:.1f}%<extra>" + name + "</extra>",
        }
        for name, points in series.items()
    ]
    layout = {
        **BASE_LAYOUT,
        "title": {"text": title},
        "yaxis": {"title": {"text": "% compliant"}, "range": [0, 100.5]},
    }
    return {"data": data, "layout": layout}
