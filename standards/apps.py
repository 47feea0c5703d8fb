from django.apps import AppConfig


class StandardsConfig(AppConfig):
    name = "standards"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Standards as policy"

    def ready(self) -> None:
        from access.workflow import REQUEST_CHECKS

        from . import registry  # noqa: F401  (registers the audit action names)
        from .checks import standards_request_check

        if standards_request_check not in REQUEST_CHECKS:
            REQUEST_CHECKS.append(standards_request_check)
