"""Celery entry points of the accounts app."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from portal.core.locks import advisory_lock

logger = logging.getLogger(__name__)


@shared_task(name="accounts.tasks.ldap_directory_sync", ignore_result=True)
def ldap_directory_sync(full: bool | None = None) -> None:
    """The scheduled LDAP directory run (incremental, full once a day); one at a time."""
    from connectors.base import ConnectorError
    from portal.core.actors import DIRECTORY_IMPORT

    from .directory import DirectoryImportError
    from .sources import directory_ldap_sync

    if not settings.TOLLGATE_LDAP_DIRECTORY:
        return
    with advisory_lock("accounts.ldap_directory_sync") as acquired:
        if not acquired:
            logger.info("LDAP directory run already running elsewhere; skipped")
            return
        try:
            outcome = directory_ldap_sync(actor=DIRECTORY_IMPORT, full=full)
        except ConnectorError as exc:
            logger.error("LDAP directory run failed: %s", exc.message)
            return
        except DirectoryImportError as exc:
            logger.error(
                "LDAP directory run refused, nothing applied: %s",
                "; ".join(str(e) for e in exc.errors[:20]),
            )
            return
        log = logger.warning if outcome.held else logger.info
        log(outcome.summary(), extra={"counts": outcome.result.counts})
