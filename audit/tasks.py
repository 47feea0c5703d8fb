from celery import shared_task
from django.conf import settings

from portal.core.locks import advisory_lock

from .services import audit_checkpoint as _audit_checkpoint
from .services import audit_verification_record
from .siem import DEFAULT_STREAM, siem_configured, siem_ship_pending
from .verify import verify_chain


@shared_task(name="audit.tasks.audit_checkpoint", ignore_result=True)
def audit_checkpoint() -> None:
    """Write the chain head to the log and checkpoint file (beat, every 5 minutes)."""
    _audit_checkpoint(note="interval")


@shared_task(name="audit.tasks.audit_verify", ignore_result=True)
def audit_verify() -> None:
    """Verify the chain and the checkpoints (beat); the result is kept for /metrics."""
    with advisory_lock("audit-verify") as acquired:
        if acquired:
            result = verify_chain(checkpoint_file=settings.AUDIT_CHECKPOINT_FILE)
            audit_verification_record(result=result)


@shared_task(name="audit.tasks.audit_siem_ship", ignore_result=True)
def audit_siem_ship() -> None:
    """Ship new audit events to the SIEM webhook or file (beat); one run at a time."""
    if not siem_configured():
        return
    with advisory_lock(f"audit-siem-{DEFAULT_STREAM}") as acquired:
        if acquired:
            siem_ship_pending(name=DEFAULT_STREAM)
