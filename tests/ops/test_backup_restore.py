"""Backups that restore (O6): pg_dump a seeded database, restore it into a fresh one, and find
the same rows and an audit chain that verifies (against the checkpoints kept outside it).

The steps are the ones docs/OPERATIONS.md gives an operator."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from access.models import Grant
from access.services import grant_revoke
from audit.models import AuditEvent
from audit.services import audit_checkpoint
from tests.access.sync_support import auto_entitlement, fake_service, fresh_fakes, request_grant  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


def _conninfo(name: str) -> dict:
    s = connection.settings_dict
    return {
        "host": s.get("HOST") or "127.0.0.1",
        "port": str(s.get("PORT") or 5432),
        "user": s.get("USER") or "postgres",
        "dbname": name,
    }


def _url(name: str) -> str:
    c = _conninfo(name)
    return f"postgres://{c['user']}@{c['host']}:{c['port']}/{name}"


def _counts(name: str) -> dict[str, int]:
    with psycopg.connect(**_conninfo(name)) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
            )
        ]
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}  # noqa: S608


def test_a_dump_restores_into_a_fresh_database_with_a_clean_audit_chain(
    org,
    requester,
    manager,
    tmp_path,
    django_capture_on_commit_callbacks,
    fresh_fakes,  # noqa: F811
):
    assert connection.vendor == "postgresql", "the backup test needs PostgreSQL (DATABASE_URL)"
    # Seed through the services: requests, grants provisioned by the outbox, a revocation.
    service = fake_service(org["search"], slug="billing")
    kept = request_grant(requester, auto_entitlement(service, requester, slug="read"),
                         django_capture_on_commit_callbacks)  # fmt: skip
    revoked = request_grant(requester, auto_entitlement(service, requester, slug="write"),
                            django_capture_on_commit_callbacks)  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        grant_revoke(revoked, actor=requester, reason="no longer needed")
    checkpoint = audit_checkpoint(note="before backup")
    assert AuditEvent.objects.count() >= 6 and checkpoint["seq"] == AuditEvent.objects.count()
    assert Grant.objects.get(pk=kept.pk).status == Grant.Status.ACTIVE

    source = connection.settings_dict["NAME"]
    target = f"{source}_restore_{uuid.uuid4().hex[:8]}"
    dump = tmp_path / "tollgate.dump"
    c = _conninfo(source)
    pg = ["-h", c["host"], "-p", c["port"], "-U", c["user"]]
    subprocess.run(["pg_dump", *pg, "-Fc", "-f", str(dump), source], check=True)
    try:
        subprocess.run(["createdb", *pg, target], check=True)
        subprocess.run(
            ["pg_restore", *pg, "--no-owner", "--exit-on-error", "-d", target, str(dump)],
            check=True,
        )
        assert _counts(target) == _counts(source)
        env = {
            **os.environ,
            "DATABASE_URL": _url(target),
            "CELERY_TASK_ALWAYS_EAGER": "true",
            "AUDIT_CHAIN_KEY": settings.AUDIT_CHAIN_KEY,
            "AUDIT_CHECKPOINT_FILE": "",
        }
        verified = subprocess.run(
            [sys.executable, "manage.py", "verify_audit", "--no-checkpoint",
             "--checkpoints", str(settings.AUDIT_CHECKPOINT_FILE)],
            cwd=ROOT, env=env, capture_output=True, text=True,
        )  # fmt: skip
        assert verified.returncode == 0, verified.stderr
        assert f"audit chain OK: {checkpoint['seq']} events" in verified.stdout
        # The restored trail still refuses to be edited (the triggers came back with it).
        with (
            psycopg.connect(**_conninfo(target), autocommit=True) as conn,
            pytest.raises(psycopg.Error),
        ):
            conn.execute("DELETE FROM audit_auditevent")
    finally:
        subprocess.run(["dropdb", *pg, "--if-exists", "--force", target], check=True)
    with psycopg.connect(**_conninfo("postgres")) as conn:
        assert (
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [target]).fetchone()
            is None
        )
