from django.apps import AppConfig


class UsageConfig(AppConfig):
    name = "usage"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Unused access"

    def ready(self) -> None:
        from . import registry  # noqa: F401  (registers the audit action names)
