"""The demo's data tables (``demo/data/*.yaml|csv``), read without Django.

The order of every list matters: the steps draw from them with a seeded
``random.Random``, so the same files and seed give the same people, catalog and costs.
A missing file or key fails loudly (at import of the step that reads it).
"""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path
from typing import Any

import yaml

DATA_DIR = Path(__file__).with_name("data")

# (provider, service, category, sku, unit, daily cost low, high, region)
CloudEntry = tuple[str, str, str, str, str, float, float, str]


@cache
def load_yaml(name: str) -> Any:
    with open(DATA_DIR / name, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@cache
def load_csv(name: str) -> tuple[dict[str, str], ...]:
    with open(DATA_DIR / name, newline="", encoding="utf-8") as fh:
        return tuple(csv.DictReader(fh))


def cloud_catalog() -> dict[str, list[CloudEntry]]:
    """``cloud_catalog.csv`` by its ``shared`` column: ``""`` (team resources), ``network``,
    ``cluster`` (the shared costs). Modelled on the FOCUS 1.0 sample (FinOps Foundation,
    CC BY 4.0): its providers, services, service categories, SKUs, regions, units, prices."""
    out: dict[str, list[CloudEntry]] = {}
    for row in load_csv("cloud_catalog.csv"):
        entry: CloudEntry = (
            row["provider"],
            row["service"],
            row["category"],
            row["sku"],
            row["unit"],
            float(row["daily_low"]),
            float(row["daily_high"]),
            row["region"],
        )
        out.setdefault(row["shared"], []).append(entry)
    return out
