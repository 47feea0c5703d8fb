from django.apps import AppConfig


class GitopsConfig(AppConfig):
    name = "gitops"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Configuration as code"

    def ready(self) -> None:
        from portal.core.managed import register_describer, register_edit_guard

        from . import registry  # noqa: F401  (registers the audit action names)
        from .guard import managed_describer, managed_edit_guard

        register_edit_guard(managed_edit_guard)
        register_describer(managed_describer)
