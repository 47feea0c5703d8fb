"""The demo's PostgreSQL-backed service (TOLLGATE_PG_TARGET_DSN) and its default."""

from __future__ import annotations

import io
import random

import psycopg
import pytest
from psycopg import sql

from access.models import Service, SyncJob
from connectors.base import PrincipalRef
from connectors.postgres import PostgresRoleConnector
from demo.steps.provisioning import seed_provisioning
from tests.access.factories import grant_directly, make_entitlement
from tests.conftest import make_user
from tests.integration.provisioning_support import ADMIN_DSN, drop_pg_target, make_pg_target

pytestmark = pytest.mark.django_db


@pytest.fixture
def billing_db(org):
    service = Service.objects.create(
        slug="billing-db", name="Billing DB", owner_team=org["payments"]
    )
    read = make_entitlement(service, slug="read-replica")
    make_entitlement(service, slug="read-write")
    return service, read


@pytest.mark.sqlite
def test_without_the_dsn_demo_services_stay_connector_less(billing_db, monkeypatch):
    monkeypatch.delenv("TOLLGATE_PG_TARGET_DSN", raising=False)
    out = io.StringIO()
    seed_provisioning(stdout=out, rng=random.Random(1))
    service, _ = billing_db
    service.refresh_from_db()
    assert (service.connector, service.connector_config) == ("", {})
    assert "not set" in out.getvalue()


def test_with_the_dsn_billing_db_really_grants_in_postgresql(
    admin, billing_db, monkeypatch, django_capture_on_commit_callbacks
):
    service, read = billing_db
    target = make_pg_target()
    try:
        monkeypatch.setenv("TOLLGATE_PG_TARGET_DSN", target.dsn)
        ann = make_user("ann.demo@example.com")
        grant_directly(ann, read)
        out = io.StringIO()
        with django_capture_on_commit_callbacks(execute=True):
            seed_provisioning(stdout=out, rng=random.Random(1), role_prefix=target.prefix)
        service.refresh_from_db()
        assert service.connector == "postgres"
        assert service.connector_config["roles"] == {
            "read-replica": f"{target.prefix}read_replica",
            "read-write": f"{target.prefix}read_write",
        }
        # The demo names no home domain (login_domains), so the login carries a hash of the
        # whole address: distinct from any other ann.demo's.
        login = PostgresRoleConnector(service.connector_config).login_for(
            PrincipalRef("ann.demo@example.com")
        )
        assert login.startswith("tg_ann_demo__")
        assert target.members(f"{target.prefix}read_replica") == [login]
        assert SyncJob.objects.get().status == "done"
    finally:
        drop_pg_target(target)
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:  # not under the run's prefix
            for role in conn.execute(
                "SELECT rolname FROM pg_roles WHERE starts_with(rolname::text, 'tg_ann_demo')"
            ).fetchall():
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role[0])))
