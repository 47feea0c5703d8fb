from django.apps import AppConfig

from portal.core.state import register_audit_recorder


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        from .services import audit_record  # imports models: only once the registry is ready

        register_audit_recorder(audit_record)
