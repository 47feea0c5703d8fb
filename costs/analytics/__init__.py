"""Cost analytics (C3-C7): resource rollups, dashboards, budgets and forecasts, anomalies,
optimisation suggestions. Models live in :mod:`costs.analytics.models` (app label ``costs``)."""
