from django.apps import AppConfig


class PatternsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "patterns"
    verbose_name = "Access patterns and standards"

    def ready(self) -> None:
        from . import registry  # noqa: F401  (registers the audit action names)
        from .services import register_joiner_hook

        register_joiner_hook()  # joiners of a team get its adopted standard bundle
