"""audit.tasks: the periodic checkpoint writes the chain head outside the database."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from django.conf import settings

from audit.models import ChainHead
from audit.tasks import audit_checkpoint
from portal.celery import app as celery_app

from .helpers import append_events


@pytest.mark.sqlite
@pytest.mark.django_db
def test_checkpoint_task_writes_the_chain_head_to_file_and_log(caplog):
    caplog.set_level(logging.INFO, logger="portal.audit")
    append_events(4)
    head = ChainHead.objects.get(pk=1)

    result = audit_checkpoint.delay()

    assert result.get() is None
    lines = Path(settings.AUDIT_CHECKPOINT_FILE).read_text().splitlines()
    assert len(lines) == 1
    written = json.loads(lines[0])
    assert (written["seq"], written["hash"], written["note"]) == (4, head.hash, "interval")
    logged = [r.audit_checkpoint for r in caplog.records if hasattr(r, "audit_checkpoint")]
    assert logged == [written]


@pytest.mark.django_db
def test_checkpoint_without_a_file_still_logs(settings, caplog):
    caplog.set_level(logging.INFO, logger="portal.audit")
    settings.AUDIT_CHECKPOINT_FILE = None
    append_events(1)

    audit_checkpoint.delay()

    assert [
        r.audit_checkpoint["seq"] for r in caplog.records if hasattr(r, "audit_checkpoint")
    ] == [1]


def test_audit_beat_entry_names_a_registered_task():
    entry = settings.CELERY_BEAT_SCHEDULE["audit-checkpoint"]
    assert entry["task"] == "audit.tasks.audit_checkpoint"
    assert entry["task"] in celery_app.tasks
    assert celery_app.amqp.router.route({}, entry["task"])["queue"].name == "default"
