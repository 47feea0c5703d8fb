from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Dev-only: in INSTALLED_APPS only when DEMO_ALLOWED (see portal/settings.py)."""

    name = "demo"
    verbose_name = "Demo data"
