"""Plotly figures of the access-pattern pages: pure functions from selector output to a
figure dict (``{"data": [...], "layout": {...}}``) that the vendored plotly.js draws
(``static/js/charts.js``), as in ``costs/charts.py``."""

from __future__ import annotations

# Cell values: 0 = not held, 1..4 = held, by risk (low..critical).
RISK_LEVEL = {"low": 1, "medium": 2, "high": 3, "critical": 4}
_COLOURS = ["#f4f5f7", "#6cc08b", "#f2c14e", "#f08a4b", "#d64545"]


def _stepped_colorscale() -> list:
    scale = []
    for i, colour in enumerate(_COLOURS):
        scale.append([i / len(_COLOURS), colour])
        scale.append([(i + 1) / len(_COLOURS), colour])
    return scale


def access_heatmap(matrix, *, title: str) -> dict:
    """People (rows) × entitlements (columns), a held cell coloured by the entitlement's risk.
    Rows and columns arrive ordered (``patterns.matrix.seriate``)."""
    levels = [RISK_LEVEL.get(c["risk"], 2) for c in matrix.cols]
    col_ids = [c["id"] for c in matrix.cols]
    z = []
    for row in matrix.rows:
        mine = matrix.held.get(row["id"], ())
        z.append([lvl if cid in mine else 0 for cid, lvl in zip(col_ids, levels, strict=True)])
    n_rows, n_cols = len(matrix.rows), len(matrix.cols)
    return {
        "data": [
            {
                "type": "heatmap",
                "z": z,
                "x": [c["label"] for c in matrix.cols],
                "y": [r["label"] for r in matrix.rows],
                "zmin": -0.5,
                "zmax": 4.5,
                "colorscale": _stepped_colorscale(),
                "showscale": False,
                "xgap": 1 if n_cols <= 80 else 0,
                "ygap": 1 if n_rows <= 80 else 0,
                "hovertemplate": "%{y}<br>%{x}<extra></extra>",
            }
        ],
        "layout": {
            "title": {"text": title},
            "height": min(max(320, 140 + 14 * n_rows), 4400),
            "margin": {"l": 160, "r": 20, "t": 40, "b": 160},
            "xaxis": {"side": "bottom", "tickangle": -60, "tickfont": {"size": 9}},
            "yaxis": {"autorange": "reversed", "tickfont": {"size": 9}},
            "font": {"size": 12},
        },
    }
