from django.apps import AppConfig


class OncallConfig(AppConfig):
    name = "oncall"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "On-call access"

    def ready(self) -> None:
        from access.workflow import REQUEST_CHECKS, STAGE_PASSES

        from . import registry  # noqa: F401  (registers the audit action names)
        from .services import oncall_request_check, oncall_stage_pass

        if oncall_request_check not in REQUEST_CHECKS:
            REQUEST_CHECKS.append(oncall_request_check)
        if oncall_stage_pass not in STAGE_PASSES:
            STAGE_PASSES.append(oncall_stage_pass)
