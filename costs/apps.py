from django.apps import AppConfig


class CostsConfig(AppConfig):
    name = "costs"
    verbose_name = "Costs"

    def ready(self) -> None:
        from . import audit_actions  # noqa: F401  (registers the audit action names)
