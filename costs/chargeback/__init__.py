"""Chargeback: each team's allocated cost per line, and the FOCUS export of it.

:mod:`.allocation` computes, for a month, one row per (cost line, receiving team) whose
amounts add up exactly to the team's summary (the ``CostDaily`` rollup), and to the cent
after rounding (largest remainder per team). :mod:`.focus_export` writes those rows as a
FOCUS 1.2 file (CSV or Parquet), streaming.
"""
