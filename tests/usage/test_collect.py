"""Last-use collection from connectors: the fake connector, and the PostgreSQL role connector
against the machine's real PostgreSQL (a throwaway database and roles, as in
tests/connectors/test_postgres.py)."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta

import psycopg
import pytest
from django.utils import timezone
from psycopg import sql

from access.models import Service
from audit.models import AuditEvent
from connectors.fake import FakeConnector
from tests.access.factories import grant_directly, make_entitlement
from tests.access.sync_support import fake_service, fresh_fakes  # noqa: F401
from usage import services, tasks
from usage.models import UsageCoverage

pytestmark = pytest.mark.django_db

ADMIN_DSN = os.environ.get(
    "TOLLGATE_TEST_PG_ADMIN_DSN", "postgres://postgres@127.0.0.1:5432/postgres"
)
RUN = f"tgu{secrets.token_hex(4)}"
DSN_ENV = f"TOLLGATE_TEST_USAGE_DSN_{RUN.upper()}"
ROLE = f"{RUN}_reader"


def test_fake_connector_last_use_is_recorded_and_source_marked_fresh(
    org,
    requester,
    manager,
    fresh_fakes,  # noqa: F811
):
    billing = fake_service(org["search"], "billing")
    ent = make_entitlement(billing, "read")
    used = grant_directly(requester, ent)
    silent = grant_directly(manager, ent)
    seen = timezone.now() - timedelta(days=3)
    FakeConnector.backend("billing").set_last_used(requester.email, seen)
    result = services.usage_collect_service(service_id=billing.pk)
    assert result == {"grants": 2, "seen": 1, "moved": 1, "error": ""}
    used.refresh_from_db()
    silent.refresh_from_db()
    assert used.last_used_at == seen
    assert silent.last_used_at is None
    row = UsageCoverage.objects.get(service=billing)
    assert row.source.slug == "connector-billing"
    assert row.last_success_at is not None and row.last_error == ""
    assert AuditEvent.objects.filter(action="usage.collected").count() == 1


def test_connector_failure_is_recorded_and_not_fresh(org, requester, fresh_fakes):  # noqa: F811
    billing = fake_service(org["search"], "billing")
    grant_directly(requester, make_entitlement(billing, "read"))
    FakeConnector.backend("billing").inject(transient=5, operations=["last_used"])
    result = services.usage_collect_service(service_id=billing.pk)
    assert result["error"]
    row = UsageCoverage.objects.get(service=billing)
    assert row.last_success_at is None
    assert row.last_error == result["error"]


def test_collect_task_polls_only_connectors_that_report_last_use(
    org,
    requester,
    fresh_fakes,  # noqa: F811
):
    billing = fake_service(org["search"], "billing")
    Service.objects.create(
        slug="manual-svc", name="M", owner_team=org["search"], connector="manual"
    )
    grant = grant_directly(requester, make_entitlement(billing, "read"))
    when = timezone.now() - timedelta(hours=5)
    FakeConnector.backend("billing").set_last_used(requester.email, when)
    assert services.services_supporting_last_used() == [billing.pk]
    tasks.collect_usage.delay()
    grant.refresh_from_db()
    assert grant.last_used_at == when


# --- PostgreSQL ------------------------------------------------------------------------
def _admin():
    return psycopg.connect(ADMIN_DSN, autocommit=True)


def _dsn(dbname: str, user: str = "postgres") -> str:
    info = psycopg.conninfo.conninfo_to_dict(ADMIN_DSN)
    info.update(dbname=dbname, user=user)
    return psycopg.conninfo.make_conninfo(**info)


@pytest.fixture
def target_db(monkeypatch):
    dbname = f"tg_usage_{secrets.token_hex(6)}"
    with _admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(ROLE)))
    monkeypatch.setenv(DSN_ENV, _dsn(dbname))
    try:
        yield dbname
    finally:
        with _admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
            )
            for (role,) in conn.execute(
                "SELECT rolname FROM pg_roles WHERE starts_with(rolname::text, %s)"
                " ORDER BY rolname DESC",
                (RUN,),
            ).fetchall():
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def test_postgres_connector_reports_current_sessions(org, requester, manager, target_db):
    from connectors.base import EntitlementRef, PrincipalRef
    from connectors.postgres import PostgresRoleConnector

    config = {
        "dsn_env": DSN_ENV,
        "login_prefix": f"{RUN}_u_",
        "create_login_as": "login",
        "roles": {"read": ROLE},
    }
    svc = Service.objects.create(
        slug="warehouse-db",
        name="Warehouse DB",
        owner_team=org["search"],
        connector="postgres",
        connector_config=config,
    )
    ent = make_entitlement(svc, "read", connector_config={"role": ROLE})
    connector = PostgresRoleConnector(config)
    for person in (requester, manager):
        connector.grant(
            PrincipalRef(person.email),
            EntitlementRef(svc.slug, "read", {"role": ROLE}),
            idempotency_key="k",
        )
    in_session = grant_directly(requester, ent)
    offline = grant_directly(manager, ent)
    login = connector.login_for(PrincipalRef(requester.email))
    session = psycopg.connect(_dsn(target_db, user=login))
    try:
        before = timezone.now()
        result = services.usage_collect_service(service_id=svc.pk)
    finally:
        session.close()
    assert result["error"] == ""
    assert (result["grants"], result["seen"], result["moved"]) == (2, 1, 1)
    in_session.refresh_from_db()
    offline.refresh_from_db()
    assert in_session.last_used_at is not None
    assert in_session.last_used_at <= timezone.now()
    assert in_session.last_used_at >= before - timedelta(minutes=1)
    assert offline.last_used_at is None  # no live session: no evidence, not "unused"
    row = UsageCoverage.objects.get(service=svc)
    assert row.source.kind == "connector" and row.last_error == ""
