"""The audit core: one event per change, append-only on PostgreSQL, verify names tampering."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from pythonjsonlogger.json import JsonFormatter

from accounts.models import PlatformRole
from accounts.services import user_set_roles
from audit import registry as actions
from audit.chain import GENESIS_HASH, compute_hash
from audit.models import AuditEvent, ChainHead
from audit.services import audit_checkpoint, audit_record
from audit.verify import verify_chain
from portal.core import context
from portal.core.actors import SystemActor
from portal.core.errors import NotPermitted

from .helpers import (
    append_events,
    require_postgresql,
    rewrite_chain_from_start,
    trigger_disabled,
    trigger_enabled,
)

BASE_DIR = Path(settings.BASE_DIR)


def _verify_command() -> str:
    from io import StringIO

    out = StringIO()
    call_command("verify_audit", stdout=out)
    return out.getvalue()


# --- one event per change -------------------------------------------------------------


@pytest.mark.sqlite
@pytest.mark.django_db
def test_role_change_writes_exactly_one_event(admin, requester):
    before_count = AuditEvent.objects.count()

    roles = user_set_roles(
        actor=admin, user=requester, roles=[PlatformRole.AUDITOR], reason="joins audit"
    )

    assert roles == ["auditor"]
    events = list(AuditEvent.objects.filter(seq__gt=0).order_by("seq"))
    assert len(events) == before_count + 1
    event = events[-1]
    assert event.action == "user.roles_changed"
    assert event.actor_id == admin.pk
    assert event.actor_label == "admin@example.com"
    assert event.target_type == "accounts.user"
    assert event.target_id == str(requester.pk)
    assert event.before == {"roles": []}
    assert event.after == {"roles": ["auditor"]}
    assert event.reason == "joins audit"
    assert event.prev_hash == (events[-2].hash if len(events) > 1 else GENESIS_HASH)
    head = ChainHead.objects.get(pk=1)
    assert (head.seq, head.hash) == (event.seq, event.hash)
    assert verify_chain().ok


@pytest.mark.django_db
def test_no_change_writes_no_event(admin, requester):
    user_set_roles(actor=admin, user=requester, roles=[PlatformRole.AUDITOR])
    count = AuditEvent.objects.count()

    assert user_set_roles(actor=admin, user=requester, roles=[PlatformRole.AUDITOR]) == ["auditor"]

    assert AuditEvent.objects.count() == count


@pytest.mark.django_db
def test_refused_change_writes_no_event_and_changes_nothing(requester, other_team_user):
    count = AuditEvent.objects.count()
    head = ChainHead.objects.filter(pk=1).values("seq", "hash").first()

    with pytest.raises(NotPermitted):
        user_set_roles(actor=requester, user=other_team_user, roles=[PlatformRole.SECURITY])

    assert AuditEvent.objects.count() == count
    assert ChainHead.objects.filter(pk=1).values("seq", "hash").first() == head
    assert list(other_team_user.groups.values_list("name", flat=True)) == []


@pytest.mark.django_db
def test_rolled_back_change_leaves_no_event_and_no_head_move():
    head = ChainHead.objects.filter(pk=1).values("seq", "hash").first()
    count = AuditEvent.objects.count()

    with pytest.raises(RuntimeError), transaction.atomic():
        append_events(2)
        raise RuntimeError("the change failed")

    assert AuditEvent.objects.count() == count
    assert ChainHead.objects.filter(pk=1).values("seq", "hash").first() == head


@pytest.mark.django_db
def test_unregistered_action_is_refused():
    with pytest.raises(ValueError, match="unregistered audit action 'made.up'"):
        audit_record(actor=None, action="made.up")
    assert AuditEvent.objects.count() == 0


@pytest.mark.django_db
def test_event_is_also_logged_as_json_to_portal_audit(
    admin, requester, caplog, django_capture_on_commit_callbacks
):
    caplog.set_level(logging.INFO, logger="portal.audit")

    with django_capture_on_commit_callbacks(execute=True):
        user_set_roles(actor=admin, user=requester, roles=[PlatformRole.FINANCE])

    records = [r for r in caplog.records if r.name == "portal.audit" and hasattr(r, "audit")]
    assert len(records) == 1
    rendered = json.loads(JsonFormatter("%(levelname)s %(name)s %(message)s").format(records[0]))
    event = AuditEvent.objects.get(action="user.roles_changed")
    assert rendered["name"] == "portal.audit"
    assert rendered["message"] == "audit event"
    assert rendered["audit"]["seq"] == event.seq
    assert rendered["audit"]["hash"] == event.hash
    assert rendered["audit"]["action"] == "user.roles_changed"
    assert rendered["audit"]["actor_label"] == "admin@example.com"
    assert rendered["audit"]["after"] == {"roles": ["finance"]}


@pytest.mark.django_db
def test_no_log_line_when_the_change_rolls_back(caplog, django_capture_on_commit_callbacks):
    caplog.set_level(logging.INFO, logger="portal.audit")
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        append_events(1)
        raise RuntimeError("rolled back")
    assert callbacks == []
    assert [r for r in caplog.records if r.name == "portal.audit"] == []


@pytest.mark.django_db
def test_request_context_is_stored_and_ipv6_normalised_so_the_chain_verifies():
    with context.bind(request_id="req-12345678", ip="2001:DB8:0:0::1", user_agent="pytest/1"):
        event = audit_record(actor=None, action=actions.USER_UPDATED, target_type="t", target_id=1)
    event.refresh_from_db()
    assert event.request_id == "req-12345678"
    assert event.ip == "2001:db8::1"
    assert event.user_agent == "pytest/1"
    assert event.actor_label == "system"
    result = verify_chain()
    assert result.ok, result.broken


@pytest.mark.django_db
def test_unparseable_ip_does_not_block_the_change():
    with context.bind(request_id="req-abcdefgh", ip="not-an-ip"):
        event = audit_record(actor=None, action=actions.USER_UPDATED, target_type="t", target_id=2)
    event.refresh_from_db()
    assert event.ip is None
    assert verify_chain().ok


# --- append-only at the database --------------------------------------------------------


@pytest.mark.django_db
def test_trigger_refuses_update_and_row_is_unchanged(admin, requester):
    require_postgresql()
    user_set_roles(actor=admin, user=requester, roles=[PlatformRole.SECURITY])
    event = AuditEvent.objects.get(action="user.roles_changed")
    assert trigger_enabled()

    with (
        pytest.raises(DatabaseError, match="audit_auditevent is append-only: UPDATE refused"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "UPDATE audit_auditevent SET reason = 'forged', after = '{}' WHERE id = %s",
            [event.pk],
        )
    with pytest.raises(DatabaseError, match="append-only: UPDATE refused"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(actor_label="someone-else")

    fresh = AuditEvent.objects.get(pk=event.pk)
    assert (fresh.reason, fresh.after, fresh.actor_label, fresh.hash) == (
        event.reason,
        {"roles": ["security"]},
        "admin@example.com",
        event.hash,
    )


@pytest.mark.django_db
def test_trigger_refuses_delete_and_row_stays(admin, requester):
    require_postgresql()
    user_set_roles(actor=admin, user=requester, roles=[PlatformRole.SECURITY])
    event = AuditEvent.objects.get(action="user.roles_changed")

    with (
        pytest.raises(DatabaseError, match="audit_auditevent is append-only: DELETE refused"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [event.pk])
    with pytest.raises(DatabaseError, match="append-only: DELETE refused"), transaction.atomic():
        AuditEvent.objects.all().delete()

    assert AuditEvent.objects.filter(pk=event.pk, hash=event.hash).count() == 1


@pytest.mark.django_db
def test_trigger_refuses_truncate_and_rows_stay(admin, requester):
    require_postgresql()
    user_set_roles(actor=admin, user=requester, roles=[PlatformRole.SECURITY])
    count = AuditEvent.objects.count()

    with (
        pytest.raises(DatabaseError, match="audit_auditevent is append-only: TRUNCATE refused"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no deferred checks pending
        cursor.execute("TRUNCATE audit_auditevent")

    assert count > 0 and AuditEvent.objects.count() == count


@pytest.mark.sqlite
@pytest.mark.django_db
def test_a_chain_rehashed_without_the_key_does_not_verify():
    """Write access to the table is not enough: the chain is an HMAC chain under
    AUDIT_CHAIN_KEY, and a rewrite hashed with anything else breaks at its first row."""
    append_events(3)

    rewrite_chain_from_start(new_reason="history rewritten", key=b"a guessed key")

    result = verify_chain(checkpoint_file=None)
    assert result.broken is not None
    assert (result.broken.seq, result.broken.reason) == (
        1,
        "content does not match its hash (row edited)",
    )


@pytest.mark.sqlite
@pytest.mark.django_db
def test_the_chain_verifies_only_under_its_own_key(settings):
    append_events(2)
    assert verify_chain(checkpoint_file=None).ok

    settings.AUDIT_CHAIN_KEY = "another-key"

    assert verify_chain(checkpoint_file=None).broken.seq == 1


# --- verify_audit -----------------------------------------------------------------------


@pytest.mark.sqlite
@pytest.mark.django_db
def test_verify_audit_passes_on_a_good_chain_and_records_a_checkpoint():
    append_events(5)

    out = _verify_command()

    head = ChainHead.objects.get(pk=1)
    assert out.startswith("audit chain OK: 5 events, head ")
    lines = Path(settings.AUDIT_CHECKPOINT_FILE).read_text().splitlines()
    assert len(lines) == 1
    checkpoint = json.loads(lines[0])
    assert (checkpoint["seq"], checkpoint["hash"], checkpoint["note"]) == (
        5,
        head.hash,
        "verification",
    )


@pytest.mark.sqlite
@pytest.mark.django_db
def test_verify_audit_names_the_first_edited_row():
    events = append_events(5)
    with trigger_disabled():
        AuditEvent.objects.filter(pk=events[2].pk).update(reason="nothing to see here")
        AuditEvent.objects.filter(pk=events[3].pk).update(reason="nor here")

    with pytest.raises(CommandError) as excinfo:
        _verify_command()

    assert excinfo.value.returncode == 1
    assert str(excinfo.value) == (
        f"audit chain broken at seq 3 (event id {events[2].pk}): "
        "content does not match its hash (row edited)"
    )


@pytest.mark.django_db
def test_verify_audit_names_a_rehashed_row_by_its_broken_link():
    events = append_events(4)
    row = AuditEvent.objects.filter(pk=events[1].pk).values().get()
    row["reason"] = "forged"
    with trigger_disabled():
        AuditEvent.objects.filter(pk=events[1].pk).update(
            reason="forged", hash=compute_hash(row["prev_hash"], row)
        )

    with pytest.raises(CommandError, match=r"seq 3 .*prev_hash does not match") as excinfo:
        _verify_command()
    assert excinfo.value.returncode == 1


@pytest.mark.django_db
def test_verify_audit_names_the_gap_left_by_a_deleted_row():
    events = append_events(5)
    with trigger_disabled():
        AuditEvent.objects.filter(pk=events[1].pk).delete()

    with pytest.raises(CommandError) as excinfo:
        _verify_command()

    assert excinfo.value.returncode == 1
    assert "audit chain broken at seq 2" in str(excinfo.value)
    assert "sequence gap: expected 2, found 3" in str(excinfo.value)


@pytest.mark.django_db
def test_verify_audit_catches_rows_cut_from_the_end():
    events = append_events(4)
    with trigger_disabled():
        AuditEvent.objects.filter(pk=events[-1].pk).delete()

    with pytest.raises(CommandError) as excinfo:
        _verify_command()

    assert excinfo.value.returncode == 1
    assert "audit chain broken at seq 4" in str(excinfo.value)
    assert "the chain head says seq 4 but the last row is seq 3" in str(excinfo.value)


@pytest.mark.django_db
def test_chain_rewritten_from_the_start_is_caught_by_the_checkpoint():
    append_events(3)
    _verify_command()  # records checkpoint seq 3
    append_events(2)
    audit_checkpoint(note="interval")  # and seq 5

    rewrite_chain_from_start(new_reason="history rewritten")

    # The rewritten chain holds together on its own ...
    assert verify_chain(checkpoint_file=None).ok
    assert AuditEvent.objects.get(seq=1).reason == "history rewritten"
    # ... but not against the checkpoints kept outside the database.
    result = verify_chain(checkpoint_file=settings.AUDIT_CHECKPOINT_FILE)
    assert result.broken is None
    assert len(result.checkpoint_problems) == 2
    with pytest.raises(CommandError) as excinfo:
        _verify_command()
    assert excinfo.value.returncode == 1
    message = str(excinfo.value)
    assert "checkpoint at seq 3" in message
    assert "the chain was rewritten up to seq 3" in message
    assert "checkpoint at seq 5" in message
    lines = Path(settings.AUDIT_CHECKPOINT_FILE).read_text().splitlines()
    assert len(lines) == 2  # a failed verification records no new checkpoint


@pytest.mark.django_db(transaction=True)
def test_verify_audit_process_exits_non_zero_naming_the_row(tmp_path):
    """The real command line, against the test database, after a direct edit."""
    require_postgresql()
    events = append_events(3)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST")},
        "DATABASE_URL": _database_url(),
        "AUDIT_CHECKPOINT_FILE": str(tmp_path / "cp.jsonl"),
    }

    good = subprocess.run(
        [sys.executable, "manage.py", "verify_audit"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert good.returncode == 0, good.stderr
    assert "audit chain OK: 3 events" in good.stdout

    with trigger_disabled():
        AuditEvent.objects.filter(pk=events[1].pk).update(target_id="forged")

    bad = subprocess.run(
        [sys.executable, "manage.py", "verify_audit"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1
    assert f"audit chain broken at seq 2 (event id {events[1].pk})" in bad.stderr


def _database_url() -> str:
    s = connection.settings_dict
    user = s.get("USER") or "postgres"
    auth = f"{user}:{s['PASSWORD']}" if s.get("PASSWORD") else user
    return f"postgres://{auth}@{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"


# --- concurrency ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_keep_one_chain():
    require_postgresql()
    threads_n, per_thread = 8, 25
    barrier = threading.Barrier(threads_n)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            for i in range(per_thread):
                with transaction.atomic():
                    audit_record(
                        actor=SystemActor(f"writer-{n}"),
                        action=actions.USER_UPDATED,
                        target_type="test.thing",
                        target_id=f"{n}-{i}",
                    )
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    assert errors == []
    total = threads_n * per_thread
    seqs = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, total + 1))
    assert AuditEvent.objects.values("target_id").distinct().count() == total
    head = ChainHead.objects.get(pk=1)
    assert head.seq == total
    result = verify_chain()
    assert result.ok, result.broken
    assert result.checked == total
