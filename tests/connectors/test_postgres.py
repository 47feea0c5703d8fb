"""PostgreSQL role connector against the machine's PostgreSQL, in a throwaway database.

The module creates ``tg_conn_<random>`` and its entitlement roles, and drops the database
and every role of this run (all named with the run's unique prefix) in a finally.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from datetime import datetime

import psycopg
import pytest
from psycopg import sql

from connectors.base import (
    ConfigError,
    EntitlementRef,
    PermanentError,
    PrincipalRef,
    TransientError,
)
from connectors.postgres import PostgresRoleConnector
from tests.connectors.contract import ConnectorContract

ADMIN_DSN = os.environ.get(
    "TOLLGATE_TEST_PG_ADMIN_DSN", "postgres://postgres@127.0.0.1:5432/postgres"
)
RUN = f"tgc{secrets.token_hex(4)}"  # unique prefix of every role this module creates
DSN_ENV = f"TOLLGATE_TEST_PG_DSN_{RUN.upper()}"
READ = f"{RUN}_analytics_read"
WRITE = f"{RUN}_analytics_write"
PRIVILEGED = f"{RUN}_role_admin"
WEAK = f"{RUN}_weak"


def _admin(dbname: str | None = None) -> psycopg.Connection:
    conn = psycopg.connect(ADMIN_DSN, autocommit=True)
    if dbname is None:
        return conn
    conn.close()
    return psycopg.connect(ADMIN_DSN, dbname=dbname, autocommit=True)


def _dsn(dbname: str, user: str = "postgres") -> str:
    info = psycopg.conninfo.conninfo_to_dict(ADMIN_DSN)
    info.update(dbname=dbname, user=user)
    return psycopg.conninfo.make_conninfo(**info)


@pytest.fixture(scope="module")
def target_db():
    dbname = f"tg_conn_{secrets.token_hex(6)}"
    with _admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    try:
        with _admin() as conn:
            for role in (READ, WRITE):
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
            conn.execute(
                sql.SQL("CREATE ROLE {} NOLOGIN CREATEROLE").format(sql.Identifier(PRIVILEGED))
            )
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(WEAK)))
        yield dbname
    finally:
        with _admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
            )
            leftovers = [
                row[0]
                for row in conn.execute(
                    "SELECT rolname FROM pg_roles WHERE starts_with(rolname::text, %s)", (RUN,)
                )
            ]
            for role in leftovers:
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@pytest.fixture
def dsn_env(target_db, monkeypatch):
    monkeypatch.setenv(DSN_ENV, _dsn(target_db))
    return DSN_ENV


@pytest.fixture
def logins():
    """Login roles created by a test are dropped after it (roles are cluster-wide)."""
    created: list[str] = []
    yield created
    with _admin() as conn:
        rows = conn.execute(
            "SELECT rolname FROM pg_roles WHERE starts_with(rolname::text, %s)", (f"{RUN}_u_",)
        ).fetchall()
        for (role,) in rows:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def connector(dsn_env: str, **config) -> PostgresRoleConnector:
    """People at example.com keep plain logins (``login_domains``)."""
    return PostgresRoleConnector(
        {
            "dsn_env": dsn_env,
            "login_prefix": f"{RUN}_u_",
            "login_domains": ["example.com"],
            **config,
        }
    )


def digest(value: str) -> str:
    import hashlib

    return hashlib.sha256(value.encode()).hexdigest()[:10]


def ent(role: str | None = READ, slug: str = "analytics-read") -> EntitlementRef:
    return EntitlementRef("warehouse", slug, {"role": role} if role else {})


def members(role: str) -> list[str]:
    with _admin() as conn:
        rows = conn.execute(
            "SELECT u.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid"
            " JOIN pg_roles u ON u.oid = m.member WHERE r.rolname = %s ORDER BY u.rolname",
            (role,),
        ).fetchall()
    return [row[0] for row in rows]


def role_row(name: str):
    with _admin() as conn:
        return conn.execute(
            "SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = %s", (name,)
        ).fetchone()


ANN = PrincipalRef("Ann.Lee@example.com")


def test_login_mapping_defaults_and_long_names(dsn_env):
    conn = connector(dsn_env)
    assert conn.login_for(ANN) == f"{RUN}_u_ann_lee"
    # Characters a login cannot keep make the login carry a hash of the whole address.
    assert conn.login_for(PrincipalRef("Jo-Ann+ops@Example.com")) == (
        f"{RUN}_u_jo_ann_ops__{digest('jo-ann+ops@example.com')}"
    )
    long = conn.login_for(PrincipalRef("x" * 80 + "@example.com"))
    assert len(long) == 63
    assert long.startswith(f"{RUN}_u_xxx")
    assert long.endswith(f"x__{digest('x' * 80 + '@example.com')}")
    assert long == conn.login_for(PrincipalRef("x" * 80 + "@example.com"))  # deterministic
    by_login = connector(dsn_env, login_from="login", login_prefix="")
    assert by_login.login_for(PrincipalRef("a@example.com", login="Analyst_7")) == "analyst_7"
    whole = connector(dsn_env, login_from="email")
    assert whole.login_for(ANN) == f"{RUN}_u_ann_lee_example_com__{digest('ann.lee@example.com')}"
    # An explicit login (an unmanaged holder found downstream) is used as it is.
    assert conn.login_for(PrincipalRef("x@unmanaged.invalid", login="Old_Role")) == "Old_Role"
    with pytest.raises(ConfigError, match="login_domains"):
        connector(dsn_env, login_domains="example.com")


# --- Distinct people, distinct logins -------------------------------------------------------
CORP = PrincipalRef("alice@corp.test")
VENDOR = PrincipalRef("alice@vendor.test")


def test_same_local_part_in_two_domains_gives_two_logins(dsn_env, logins):
    conn = connector(dsn_env, login_domains=["corp.test"])
    assert conn.login_for(CORP) == f"{RUN}_u_alice"  # the home domain keeps its plain login
    assert conn.login_for(VENDOR) == f"{RUN}_u_alice__{digest('alice@vendor.test')}"
    no_home = connector(dsn_env, login_domains=[])
    assert len({no_home.login_for(CORP), no_home.login_for(VENDOR), conn.login_for(CORP)}) == 3
    assert len({conn.login_for(p) for p in (CORP, VENDOR, PrincipalRef("a.lice@corp.test"))}) == 3
    conn.grant(CORP, ent(), idempotency_key="a")
    conn.grant(VENDOR, ent(), idempotency_key="b")
    assert members(READ) == sorted([conn.login_for(CORP), conn.login_for(VENDOR)])
    conn.revoke(VENDOR, ent(), idempotency_key="c")
    assert members(READ) == [conn.login_for(CORP)]


def test_a_login_is_never_merged_between_two_people(dsn_env, logins):
    """Two people who map to one login (explicit logins here): the second is refused and the
    first keeps their membership alone."""
    conn = connector(dsn_env, login_from="login")
    first = PrincipalRef("alice@corp.test", login="alice")
    second = PrincipalRef("alice@vendor.test", login="alice")
    conn.grant(first, ent(), idempotency_key="a")
    assert conn.grant(first, ent(), idempotency_key="a2").changed is False
    with pytest.raises(PermanentError, match="belongs to another person, not alice@vendor.test"):
        conn.grant(second, ent(WRITE, "analytics-write"), idempotency_key="b")
    assert members(READ) == [f"{RUN}_u_alice"]
    assert members(WRITE) == []


def test_a_login_made_before_owner_marks_is_claimed_by_the_first_person(dsn_env, logins):
    login = f"{RUN}_u_alice"
    with _admin() as admin:
        admin.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(login)))
    conn = connector(dsn_env, login_domains=["corp.test"])
    assert conn.grant(CORP, ent(), idempotency_key="a").changed is True
    with _admin() as admin:
        comment = admin.execute(
            "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = %s",
            (login,),
        ).fetchone()[0]
    assert comment == conn.owner_mark(CORP)
    assert "alice" not in comment  # no address is written downstream
    explicit = connector(dsn_env, login_from="login")
    with pytest.raises(PermanentError, match="belongs to another person"):
        explicit.grant(PrincipalRef("bob@corp.test", login="alice"), ent(), idempotency_key="b")


def test_grant_twice_makes_one_membership_and_a_nologin_role(dsn_env, logins):
    conn = connector(dsn_env)
    login = conn.login_for(ANN)
    assert role_row(login) is None

    first = conn.grant(ANN, ent(), idempotency_key="job-1")
    second = conn.grant(ANN, ent(), idempotency_key="job-1")

    assert (first.changed, first.status) == (True, "done")
    assert first.detail == f"granted {READ} to {login} (login created NOLOGIN)"
    assert (second.changed, second.status) == (False, "done")
    assert second.detail == f"{login} is already a member of {READ}"
    assert members(READ) == [login]
    assert role_row(login) == (login, False)


def test_grant_can_create_login_roles_when_configured(dsn_env, logins):
    conn = connector(dsn_env, create_login_as="login")
    result = conn.grant(ANN, ent(), idempotency_key="job-2")
    assert result.changed is True
    assert role_row(conn.login_for(ANN)) == (conn.login_for(ANN), True)


def test_grant_without_create_login_refuses_unknown_login(dsn_env, logins):
    conn = connector(dsn_env, create_login=False)
    with pytest.raises(PermanentError, match="does not exist and create_login is off"):
        conn.grant(ANN, ent(), idempotency_key="job-3")
    assert role_row(conn.login_for(ANN)) is None
    assert members(READ) == []


def test_revoke_twice_leaves_no_membership(dsn_env, logins):
    conn = connector(dsn_env)
    login = conn.login_for(ANN)
    conn.grant(ANN, ent(), idempotency_key="g")
    conn.grant(ANN, ent(WRITE, "analytics-write"), idempotency_key="g2")

    first = conn.revoke(ANN, ent(), idempotency_key="r")
    second = conn.revoke(ANN, ent(), idempotency_key="r")

    assert (first.changed, first.detail) == (True, f"revoked {READ} from {login}")
    assert (second.changed, second.detail) == (False, f"{login} is not a member of {READ}")
    assert members(READ) == []
    assert members(WRITE) == [login]  # the other entitlement is untouched
    assert role_row(login) == (login, False)  # the login itself stays


def test_revoke_of_a_login_that_never_existed_is_a_no_op(dsn_env, logins):
    conn = connector(dsn_env)
    result = conn.revoke(PrincipalRef("nobody@example.com"), ent(), idempotency_key="r")
    assert result.changed is False
    assert role_row(conn.login_for(PrincipalRef("nobody@example.com"))) is None


def test_concurrent_grants_of_one_login_make_one_membership(dsn_env, logins):
    conn = connector(dsn_env)
    results, errors = [], []
    barrier = threading.Barrier(6)

    def worker():
        barrier.wait()
        try:
            results.append(conn.grant(ANN, ent(), idempotency_key="same-job"))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(result.changed for result in results) == [False] * 5 + [True]
    assert members(READ) == [conn.login_for(ANN)]


def test_list_holders_pages_in_a_deterministic_order(dsn_env, logins):
    conn = connector(dsn_env, roles={"analytics-read": READ, "analytics-write": WRITE})
    people = [PrincipalRef(f"user{i}@example.com") for i in (3, 1, 4, 0, 2)]
    for person in people:
        conn.grant(person, ent(), idempotency_key=f"g-{person.email}")
    conn.grant(people[0], ent(WRITE, "analytics-write"), idempotency_key="w")
    expected = sorted(conn.login_for(person) for person in people)

    pages, cursor = [], None
    while True:
        page = conn.list_holders(ent(), cursor=cursor, page_size=2)
        pages.append([holder.principal for holder in page.holders])
        cursor = page.next_cursor
        if cursor is None:
            break

    assert pages == [expected[0:2], expected[2:4], expected[4:5]]
    assert {holder.entitlement for holder in conn.iter_holders(ent(), page_size=2)} == {
        "analytics-read"
    }
    assert {holder.level for holder in conn.iter_holders(ent())} == {"member"}

    # All entitlements of the service: role names map back to entitlement slugs.
    everything = list(conn.iter_holders(page_size=4))
    assert [(h.entitlement, h.principal) for h in everything] == [
        *(("analytics-read", login) for login in expected),
        ("analytics-write", conn.login_for(people[0])),
    ]
    # Without a roles map, every membership of the connector's (prefixed) logins.
    bare = connector(dsn_env)
    assert [(h.entitlement, h.principal) for h in bare.iter_holders(page_size=3)] == [
        *((READ, login) for login in expected),
        (WRITE, conn.login_for(people[0])),
    ]


def test_list_holders_exact_page_boundary_has_no_empty_last_page(dsn_env, logins):
    conn = connector(dsn_env)
    for i in range(2):
        conn.grant(PrincipalRef(f"p{i}@example.com"), ent(), idempotency_key=f"k{i}")
    page = conn.list_holders(ent(), page_size=2)
    assert len(page.holders) == 2
    assert page.next_cursor is None


@pytest.mark.parametrize(
    "bad_role",
    ['analytics"; DROP ROLE postgres; --', "pg_read_server_files", "1role", "a" * 64, "has space"],
)
def test_bad_role_names_are_refused_before_touching_the_database(dsn_env, logins, bad_role):
    conn = connector(dsn_env)
    with pytest.raises(ConfigError, match="invalid role name"):
        conn.grant(ANN, ent(bad_role), idempotency_key="bad")
    assert role_row(conn.login_for(ANN)) is None
    with pytest.raises(ConfigError, match="invalid role name"):
        connector(dsn_env, roles={"x": bad_role})


def test_undefined_role_is_permanent_and_creates_no_login(dsn_env, logins):
    conn = connector(dsn_env)
    with pytest.raises(PermanentError, match=f"PostgreSQL role {RUN}_missing does not exist"):
        conn.grant(ANN, ent(f"{RUN}_missing"), idempotency_key="k")
    assert role_row(conn.login_for(ANN)) is None
    with pytest.raises(PermanentError, match="does not exist"):
        conn.list_holders(ent(f"{RUN}_missing"))


def test_entitlement_without_a_role_is_a_config_error(dsn_env):
    with pytest.raises(ConfigError, match="names no PostgreSQL role"):
        connector(dsn_env).grant(ANN, ent(None), idempotency_key="k")


def test_privileged_roles_cannot_be_entitlements(dsn_env, logins):
    conn = connector(dsn_env)
    with pytest.raises(PermanentError, match="is privileged"):
        conn.grant(ANN, ent(PRIVILEGED), idempotency_key="k")
    assert members(PRIVILEGED) == []
    assert role_row(conn.login_for(ANN)) is None


def test_missing_privilege_is_permanent(target_db, monkeypatch, logins):
    monkeypatch.setenv(DSN_ENV, _dsn(target_db, user=WEAK))
    conn = connector(DSN_ENV)
    with pytest.raises(PermanentError, match=r"SQLSTATE 42501") as info:
        conn.grant(ANN, ent(), idempotency_key="k")
    assert not isinstance(info.value, TransientError)
    assert role_row(conn.login_for(ANN)) is None


def test_connection_refused_is_transient(monkeypatch):
    monkeypatch.setenv(DSN_ENV, "postgres://postgres@127.0.0.1:1/postgres")
    conn = connector(DSN_ENV, connect_timeout=2)
    with pytest.raises(TransientError, match="PostgreSQL grant failed") as info:
        conn.grant(ANN, ent(), idempotency_key="k")
    assert "postgres://" not in info.value.message
    with pytest.raises(TransientError):
        conn.list_holders(ent())


def test_missing_dsn_environment_variable_is_a_config_error(monkeypatch):
    monkeypatch.delenv(DSN_ENV, raising=False)
    with pytest.raises(ConfigError, match=f"environment variable {DSN_ENV} .* is not set"):
        connector(DSN_ENV).grant(ANN, ent(), idempotency_key="k")


def test_last_used_sees_current_sessions_only(target_db, dsn_env, logins):
    conn = connector(dsn_env, create_login_as="login")
    conn.grant(ANN, ent(), idempotency_key="k")
    login = conn.login_for(ANN)
    assert conn.last_used(ANN) is None  # no session yet: no evidence

    session = psycopg.connect(_dsn(target_db, user=login))
    try:
        seen = conn.last_used(ANN)
    finally:
        session.close()
    assert isinstance(seen, datetime)
    assert seen.tzinfo is not None


def test_describe_declares_roles_from_config(dsn_env):
    description = connector(dsn_env, roles={"analytics-read": READ}).describe()
    assert [rt.name for rt in description.resource_types] == ["role"]
    assert [(e.slug, e.config["role"]) for e in description.entitlements] == [
        ("analytics-read", READ)
    ]
    assert description.supports_list_holders is True
    assert description.supports_last_used is True


@pytest.mark.parametrize(
    "dsn", ["host=db password=hunter2 junk", "postgres://u:hunter2@db/x?nonsense_option=1"]
)
def test_malformed_dsn_is_a_config_error_that_does_not_echo_it(monkeypatch, dsn):
    monkeypatch.setenv(DSN_ENV, dsn)
    with pytest.raises(ConfigError) as info:
        connector(DSN_ENV).grant(ANN, ent(), idempotency_key="k")
    assert info.value.message == f"postgres connector: the DSN in {DSN_ENV} is malformed"


def test_refused_authentication_or_unknown_database_is_permanent(target_db, monkeypatch):
    monkeypatch.setenv(DSN_ENV, _dsn(target_db, user=f"{RUN}_nobody"))
    with pytest.raises(PermanentError, match=f'role "{RUN}_nobody" does not exist') as info:
        connector(DSN_ENV).grant(ANN, ent(), idempotency_key="k")
    assert not isinstance(info.value, TransientError)
    monkeypatch.setenv(DSN_ENV, _dsn(f"{target_db}_missing"))
    with pytest.raises(PermanentError, match="does not exist") as info:
        connector(DSN_ENV).list_holders(ent())
    assert not isinstance(info.value, TransientError)


# --- The contract every connector passes (tests/connectors/contract.py) ---------------------
CONTRACT_PASSWORD = f"contract-pw-{secrets.token_hex(6)}"  # trust auth ignores it; never shown


class TestPostgresContract(ConnectorContract):
    @pytest.fixture
    def pg_dsn_env(self, target_db, monkeypatch):
        dsn = _dsn(target_db) + f" password={CONTRACT_PASSWORD}"
        monkeypatch.setenv(DSN_ENV, dsn)
        return DSN_ENV

    @pytest.fixture
    def connector(self, pg_dsn_env, logins):
        return connector(pg_dsn_env)

    @pytest.fixture
    def entitlement(self, target_db):
        role = f"{RUN}_contract_{secrets.token_hex(3)}"
        with _admin() as conn:
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
        try:
            yield EntitlementRef("warehouse", "contract", {"role": role})
        finally:
            with _admin() as conn:
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))

    @pytest.fixture
    def principals(self):
        tag = secrets.token_hex(3)
        return [
            PrincipalRef(f"{name}{tag}@example.com") for name in ("ann", "bob", "cat", "dan", "eve")
        ]

    @pytest.fixture
    def page_size(self):
        return 2

    @pytest.fixture
    def unreachable_connector(self, monkeypatch):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        env = f"{DSN_ENV}_CLOSED"
        monkeypatch.setenv(
            env, f"host=127.0.0.1 port={port} dbname=x user=postgres password={CONTRACT_PASSWORD}"
        )
        return connector(env, connect_timeout=2, health_timeout=1)

    @pytest.fixture
    def permanent_failure(self, connector):
        missing = EntitlementRef("warehouse", "ghost", {"role": f"{RUN}_no_such_role"})
        return lambda: connector.grant(PrincipalRef("x@example.com"), missing, idempotency_key="k")

    @pytest.fixture
    def secrets(self):
        return [CONTRACT_PASSWORD]


def test_health_names_a_role_that_cannot_create_logins(target_db, monkeypatch):
    monkeypatch.setenv(DSN_ENV, _dsn(target_db, user=WEAK))
    health = connector(DSN_ENV).health()
    assert health.ok is False
    assert health.detail == (
        f"PostgreSQL answers as {WEAK}, which lacks CREATEROLE: grants cannot create logins "
        "or change memberships"
    )
    assert connector(DSN_ENV, create_login=False).health().ok is True
