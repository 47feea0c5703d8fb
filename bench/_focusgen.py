"""Build a large FOCUS CSV by replicating the real sample over resources and days."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

SAMPLE = (
    Path(__file__).resolve().parent.parent.parent
    / "shared"
    / "data"
    / "costs"
    / "focus10_sample_multicloud_1000.csv"
)


def build(path: Path, rows: int) -> Path:
    with open(SAMPLE, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        sample = list(reader)
    col = header.index
    rid, cps, cpe = col("ResourceId"), col("ChargePeriodStart"), col("ChargePeriodEnd")
    bps, bpe = col("BillingPeriodStart"), col("BillingPeriodEnd")
    days = [dt.date(2024, 9, d) for d in range(1, 31)]
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, quoting=csv.QUOTE_MINIMAL)
        writer.writerow(header)
        for i in range(rows):
            r = list(sample[i % len(sample)])
            copy_no = i // len(sample)
            day = days[copy_no % 30]
            r[rid] = f"{r[rid]}-r{copy_no // 30}"
            r[cps] = f"{day} {r[cps][11:] or '00:00:00'}"
            r[cpe] = f"{day} {r[cpe][11:] or '00:00:00'}"
            if r[cpe] < r[cps]:
                r[cpe] = r[cps]
            r[bps], r[bpe] = "2024-09-01 00:00:00", "2024-10-01 00:00:00"
            writer.writerow(r)
    return path
