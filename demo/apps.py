import os

from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Dev-only: in INSTALLED_APPS only when DEMO_ALLOWED (see portal/settings.py)."""

    name = "demo"
    verbose_name = "Demo data"

    def ready(self) -> None:
        # The demo's throw-away slapd (demo/steps/ldap.py) has a fixed service password; the
        # User Directory service's connector reads it from this variable, as a real one would.
        from demo.slapd import SERVICE_PASSWORD

        os.environ.setdefault("TOLLGATE_DEMO_LDAP_PASSWORD", SERVICE_PASSWORD)
