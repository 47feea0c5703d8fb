from celery import shared_task

from .services import audit_checkpoint as _audit_checkpoint


@shared_task(name="audit.tasks.audit_checkpoint", ignore_result=True)
def audit_checkpoint() -> None:
    """Write the chain head to the log and checkpoint file (beat, every 5 minutes)."""
    _audit_checkpoint(note="interval")
