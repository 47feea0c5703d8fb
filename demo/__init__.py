"""The demo: deterministic demo data for ``make run``, in one dev-only app.

Installed only when ``settings.DEMO_ALLOWED`` is true (never in production). Each area's
builder is a step in :mod:`demo.steps`; its data tables are YAML and CSV files in
``demo/data/`` (:mod:`demo.tables`); :mod:`demo.clock` is the one place that moves the
demo's history into the past; ``manage.py seed_demo`` runs the steps in order.
Production apps hold no demo code: the steps write through their services.
"""
