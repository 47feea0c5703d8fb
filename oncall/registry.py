"""Audit action names of on-call access."""

from audit.registry import register

ROTA_PUSHED = register("oncall.rota_pushed", "An on-call rota's shifts were replaced (API or iCal)")
SCHEDULE_SAVED = register("oncall.schedule_saved", "An on-call schedule was created or changed")
