"""Celery entry points of the usage app: take ids, call one service."""

from __future__ import annotations

import logging
import random
from pathlib import Path

from celery import shared_task
from django.conf import settings

from portal.core.actors import USAGE
from portal.core.errors import DomainError
from portal.core.locks import advisory_lock

logger = logging.getLogger(__name__)
MAX_NOTIFY_RETRIES = 5


@shared_task(name="usage.tasks.collect_usage", ignore_result=True, queue="ingest")
def collect_usage() -> None:
    """Beat: poll every connector that reports last use (one service at a time)."""
    from . import services  # usage.services enqueues this module's tasks

    with advisory_lock("usage.collect") as acquired:
        if not acquired:
            return
        for service_id in services.services_supporting_last_used():
            result = services.usage_collect_service(service_id=service_id)
            if result["error"]:
                logger.warning("usage collection failed", extra={"service": service_id, **result})


@shared_task(name="usage.tasks.unused_daily", ignore_result=True)
def unused_daily() -> None:
    """Beat (daily): cancel used-again removals, end opt-outs, detect, remove what is due."""
    from . import services  # usage.services enqueues this module's tasks

    with advisory_lock("usage.unused_daily") as acquired:
        if not acquired:
            return
        counts = services.unused_daily()
        logger.info("unused access run", extra={"counts": counts})


def watch_folder_once(root: Path | None = None) -> list[str]:
    """Import every ``<root>/<source-slug>/*.json[.gz|l]`` file; move it to ``done/`` or
    ``failed/`` (with a ``.error`` note) so it is never imported twice."""
    from . import services  # usage.services enqueues this module's tasks

    root = Path(root or settings.TOLLGATE_USAGE_WATCH_DIR)
    if not root.is_dir():
        return []
    outcomes = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in sorted(folder.iterdir()):
            if not path.is_file() or not path.name.endswith((".json", ".jsonl", ".json.gz")):
                continue
            target = folder / "done"
            try:
                services.usage_import_events(
                    actor=USAGE,
                    source_slug=folder.name,
                    data=path.read_bytes(),
                    file_name=path.name,
                )
                outcomes.append(f"{folder.name}/{path.name}: imported")
            except DomainError as exc:
                target = folder / "failed"
                target.mkdir(exist_ok=True)
                (target / f"{path.name}.error").write_text(exc.message + "\n")
                outcomes.append(f"{folder.name}/{path.name}: refused: {exc.message}")
            target.mkdir(exist_ok=True)
            path.rename(target / path.name)
    return outcomes


@shared_task(name="usage.tasks.watch_folder_scan", ignore_result=True, queue="ingest")
def watch_folder_scan() -> None:
    with advisory_lock("usage.watch_folder") as acquired:
        if acquired:
            watch_folder_once()


@shared_task(
    bind=True, name="usage.tasks.notify_removals", max_retries=MAX_NOTIFY_RETRIES, queue="notify"
)
def notify_removals(self, removal_ids: list[int], kind: str) -> None:
    """One e-mail (and chat post) per holder and per service owner team."""
    from access.notifications import deliver

    from . import notifications
    from .models import UnusedRemoval

    wanted = UnusedRemoval.Status.SCHEDULED if kind == "scheduled" else UnusedRemoval.Status.REMOVED
    rows = list(
        UnusedRemoval.objects.filter(pk__in=removal_ids, status=wanted)
        .select_related("principal", "service", "grant__entitlement__service")
        .order_by("pk")
    )
    by_holder: dict = {}
    by_service: dict = {}
    for r in rows:
        by_holder.setdefault(r.principal, []).append(r)
        by_service.setdefault(r.service, []).append(r)
    messages = [notifications.holder_message(p, rs, kind) for p, rs in by_holder.items()]
    messages += [notifications.owner_message(s, rs, kind) for s, rs in by_service.items()]
    try:
        for message in messages:
            deliver(message, channels=("email",))
    except OSError as exc:
        countdown = min(600, 10 * 2**self.request.retries) + random.randint(0, 5)  # noqa: S311
        raise self.retry(exc=exc, countdown=countdown) from exc
