"""PostgreSQL role connector: entitlements are database roles, holders are role members.

Service ``connector_config`` (non-secret; the DSN comes from the environment)::

    {
      "dsn_env": "TOLLGATE_PG_TARGET_DSN",   # required: env var holding the target DSN
      "roles": {"analytics-read": "analytics_read"},  # entitlement slug -> role (optional)
      "login_prefix": "tg_",                 # prefix of generated logins (default "tg_")
      "login_from": "email_local",           # email_local | email | login
      "login_domains": ["corp.example"],     # home domains whose people keep plain logins
      "create_login": true,                  # create a missing login role (default true)
      "create_login_as": "nologin",          # nologin (default) | login
      "connect_timeout": 5,                  # seconds
      "health_timeout": 3,                   # seconds to connect in health()
      "statement_timeout_ms": 10000
    }

An entitlement's role is ``EntitlementRef.config["role"]`` or else ``roles[slug]``.

Distinct people get distinct logins (``login_for``): ``tg_ann_lee`` for ann.lee@ a home domain,
``tg_ann_lee__<hash of the whole address>`` for anyone else; and a login's role comment marks
whose it is, so a login that belongs to another person is refused, never shared.

* ``grant`` = ``GRANT role TO login``, creating the login role first if needed (``NOLOGIN``
  until an operator sets a password policy). Already a member: no-op, ``changed=False``.
* ``revoke`` = ``REVOKE role FROM login``. Not a member (or no such login): no-op.
* Both run in one transaction holding an advisory lock on the login, so concurrent or
  redelivered calls cannot race each other.
* ``list_holders`` reads direct memberships from ``pg_auth_members`` in (role, member)
  order with a keyset cursor.
* ``last_used`` reads ``pg_stat_activity``: it only sees *current* sessions of the login
  (and nothing at all for NOLOGIN roles). ``None`` means "no evidence", not "unused".

Role and login names are validated (``[A-Za-z_][A-Za-z0-9_]*``, at most 63 characters, not
the reserved ``pg_`` prefix) and always quoted with ``psycopg.sql.Identifier``. Roles that
carry SUPERUSER, CREATEROLE, REPLICATION or BYPASSRLS are refused as entitlements: membership
would let the holder ``SET ROLE`` to them.

Connection problems, timeouts, lock and serialisation failures are transient; missing
privileges, undefined roles, refused authentication and bad configuration are permanent.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import psycopg
import psycopg.conninfo
from psycopg import sql

from connectors.base import (
    ConfigError,
    Connector,
    ConnectorDescription,
    ConnectorError,
    EntitlementRef,
    EntitlementSpec,
    Health,
    Holder,
    Page,
    PermanentError,
    PrincipalRef,
    ResourceType,
    Result,
    TransientError,
    decode_pair_cursor,
    elapsed_ms,
    encode_pair_cursor,
)

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
MAX_IDENTIFIER = 63
LOGIN_MODES = ("email_local", "email", "login")
# A login's role comment names the person it belongs to (``COMMENT ON ROLE``), so one login is
# never given to two people: a second person is refused, not merged.
OWNER_MARK = "tollgate principal sha256:"
LOGIN_ATTRIBUTES = {"nologin": sql.SQL("NOLOGIN"), "login": sql.SQL("LOGIN")}
# SQLSTATE classes worth retrying: connection exception, insufficient resources, operator
# intervention (admin shutdown, cannot connect now), system error, transaction rollback
# (serialisation failure, deadlock), object not in prerequisite state (lock not available).
TRANSIENT_CLASSES = {"08", "53", "57", "58", "40", "55"}
# Query canceled (statement/lock timeout) is 57014, covered by class 57.

_PERMANENT_CONNECT = re.compile(
    r"FATAL:\s+(password authentication failed|role \".*\" does not exist"
    r"|database \".*\" does not exist|no pg_hba\.conf entry|permission denied"
    r"|role \".*\" is not permitted to log in|.*authentication failed)"
)

_MEMBERSHIP_SQL = """
SELECT 1 FROM pg_auth_members m
JOIN pg_roles r ON r.oid = m.roleid
JOIN pg_roles u ON u.oid = m.member
WHERE r.rolname = %s AND u.rolname = %s
LIMIT 1
"""


def validate_name(name: Any, *, what: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ConfigError(
            f"invalid {what} name {name!r}: use letters, digits and underscores, starting with "
            f"a letter or underscore, at most {MAX_IDENTIFIER} characters"
        )
    if name.lower().startswith("pg_"):
        raise ConfigError(f"invalid {what} name {name!r}: the pg_ prefix is reserved")
    return name


def translate_error(exc: psycopg.Error, *, action: str) -> Exception:
    """Map a psycopg error to TransientError or PermanentError (message without secrets)."""
    state = getattr(exc, "sqlstate", None) or ""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    message = f"PostgreSQL {action} failed: {text}" + (f" (SQLSTATE {state})" if state else "")
    if not state:
        # No SQLSTATE: libpq failed to connect or lost the connection. The server's FATAL
        # refusals that no retry fixes (authentication, unknown role or database) are
        # permanent; refused, DNS, timeouts, start-up/shut-down and too many clients are not.
        if _PERMANENT_CONNECT.search(str(exc)):
            return PermanentError(message)
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            return TransientError(message)
        return PermanentError(message)
    if state[:2] in TRANSIENT_CLASSES:
        return TransientError(message)
    return PermanentError(message)


class PostgresRoleConnector(Connector):
    name = "postgres"
    env_keys = ("dsn_env",)
    required_keys = ("dsn_env",)

    supports_list_holders = True
    supports_last_used = True

    def __init__(self, config=None):
        super().__init__(config)
        cfg = self.config
        self.login_prefix: str = cfg.get("login_prefix", "tg_")
        if not isinstance(self.login_prefix, str) or (
            self.login_prefix and not re.match(r"^[a-z_][a-z0-9_]{0,20}$", self.login_prefix)
        ):
            raise ConfigError(
                "postgres connector: login_prefix must be lower-case letters, digits and "
                "underscores (at most 21 characters)"
            )
        if self.login_prefix.startswith("pg_"):
            raise ConfigError("postgres connector: login_prefix may not start with pg_")
        self.login_from: str = cfg.get("login_from", "email_local")
        if self.login_from not in LOGIN_MODES:
            raise ConfigError(
                f"postgres connector: login_from must be one of {', '.join(LOGIN_MODES)}"
            )
        domains = cfg.get("login_domains", [])
        if not isinstance(domains, list) or not all(
            isinstance(d, str) and re.match(r"^[a-z0-9.-]+$", d) for d in domains
        ):
            raise ConfigError(
                "postgres connector: login_domains must be a list of lower-case e-mail domains"
            )
        self.login_domains: frozenset[str] = frozenset(domains)
        self.create_login: bool = bool(cfg.get("create_login", True))
        self.create_login_as: str = str(cfg.get("create_login_as", "nologin")).lower()
        if self.create_login_as not in LOGIN_ATTRIBUTES:
            raise ConfigError("postgres connector: create_login_as must be 'nologin' or 'login'")
        roles = cfg.get("roles", {})
        if not isinstance(roles, dict):
            raise ConfigError("postgres connector: roles must map entitlement slugs to role names")
        self.roles: dict[str, str] = {
            str(slug): validate_name(role, what="role") for slug, role in roles.items()
        }
        self.connect_timeout = self._positive_int("connect_timeout", 5)
        self.statement_timeout_ms = self._positive_int("statement_timeout_ms", 10_000)
        self.health_timeout = self._positive_int("health_timeout", 3)

    def _positive_int(self, key: str, default: int) -> int:
        value = self.config.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"postgres connector: {key} must be a positive integer")
        return value

    # Declaration -----------------------------------------------------------------------
    def describe(self) -> ConnectorDescription:
        return ConnectorDescription(
            name=self.name,
            resource_types=(ResourceType("role", "PostgreSQL role; holders are its members"),),
            entitlements=tuple(
                EntitlementSpec(slug=slug, resource_type="role", name=role, config={"role": role})
                for slug, role in sorted(self.roles.items())
            ),
            supports_list_holders=True,
            supports_last_used=True,
            notes=(
                "last_used sees only current sessions (pg_stat_activity); "
                f"logins are created {self.create_login_as.upper()} with prefix {self.login_prefix!r}"
            ),
        )

    def role_for(self, entitlement: EntitlementRef) -> str:
        role = (entitlement.config or {}).get("role") or self.roles.get(entitlement.slug)
        if not role:
            raise ConfigError(
                f"entitlement {entitlement.service_slug}/{entitlement.slug} names no PostgreSQL "
                "role: set its config {'role': ...} or the service's connector_config roles map"
            )
        return validate_name(role, what="role")

    def login_for(self, principal: PrincipalRef) -> str:
        """The downstream login of ``principal``; distinct people get distinct logins.

        An explicit ``principal.login`` outside ``login_from=login`` is a login found
        downstream (an unmanaged holder to revoke) and is used as it is. Otherwise the login
        is the prefix plus a readable part, in one of two shapes that cannot meet:

        * plain, ``tg_ann_lee`` (never contains ``__``): only when the source says who it is
          on its own: ``email_local`` for an address in ``login_domains`` whose local part is
          letters, digits and dots (dots become ``_``); ``login`` made of letters, digits and
          single underscores. These are the logins earlier versions gave those people.
        * hashed, ``tg_ann_lee__1a2b3c4d5e``: anything else (other domains, other characters,
          ``email``, too long) gets ``__`` and a hash of the whole source value.
        """
        if principal.login and self.login_from != "login":
            return validate_name(principal.login, what="login")
        email = principal.email.strip().lower()
        local, _, domain = email.partition("@")
        if self.login_from == "login":
            source = (principal.login or "").strip().lower()
            if not source:
                raise ConfigError(f"principal {principal.email} has no login (login_from=login)")
            readable = source
            plain_ok = re.fullmatch(r"[a-z0-9_]+", source) is not None
        elif self.login_from == "email":
            source, readable, plain_ok = email, email, False
        else:
            source, readable = email, local.replace(".", "_")
            plain_ok = domain in self.login_domains and re.fullmatch(r"[a-z0-9.]+", local)
        readable = re.sub(r"[^a-z0-9]", "_", readable)
        if not readable.strip("_"):
            raise ConfigError(f"cannot derive a login for principal {principal.email!r}")
        login = f"{self.login_prefix}{readable}"
        if (
            plain_ok
            and "__" not in readable
            and re.match(r"^[a-z_]", login)
            and len(login) <= MAX_IDENTIFIER
        ):
            return validate_name(login, what="login")
        digest = hashlib.sha256(source.encode()).hexdigest()[:10]
        head = self.login_prefix if re.match(r"^[a-z_]", login) else "u_"
        room = MAX_IDENTIFIER - len(head) - len(digest) - 2
        return validate_name(f"{head}{readable[:room].rstrip('_')}__{digest}", what="login")

    @staticmethod
    def owner_mark(principal: PrincipalRef) -> str:
        """What a login's role comment says about the person it belongs to (a hash: no
        e-mail address is written downstream)."""
        who = (principal.email or principal.login).strip().lower()
        return f"{OWNER_MARK}{hashlib.sha256(who.encode()).hexdigest()[:16]}"

    # Plumbing --------------------------------------------------------------------------
    @contextmanager
    def _transaction(
        self, action: str, *, connect_timeout: int | None = None
    ) -> Iterator[psycopg.Cursor]:
        dsn = self.secret_from_env("dsn_env")
        try:
            psycopg.conninfo.conninfo_to_dict(dsn)
        except psycopg.Error:
            # The parser's message may quote part of the DSN (a password): do not repeat it.
            raise ConfigError(
                f"postgres connector: the DSN in {self.config['dsn_env']} is malformed"
            ) from None
        try:
            with (
                psycopg.connect(
                    dsn,
                    connect_timeout=connect_timeout or self.connect_timeout,
                    application_name="tollgate-connector",
                    autocommit=False,
                ) as conn,
                conn.cursor() as cur,
            ):
                cur.execute(
                    "SELECT set_config('statement_timeout', %s, true),"
                    " set_config('lock_timeout', %s, true)",
                    (str(self.statement_timeout_ms), str(self.statement_timeout_ms)),
                )
                yield cur
        except psycopg.Error as exc:
            raise translate_error(exc, action=action) from None

    @staticmethod
    def _lock_login(cur: psycopg.Cursor, login: str) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"tollgate:{login}",))

    @staticmethod
    def _role_exists(cur: psycopg.Cursor, name: str) -> bool:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,))
        return cur.fetchone() is not None

    @staticmethod
    def _check_entitlement_role(cur: psycopg.Cursor, role: str) -> None:
        cur.execute(
            "SELECT rolsuper, rolcreaterole, rolreplication, rolbypassrls"
            " FROM pg_roles WHERE rolname = %s",
            (role,),
        )
        row = cur.fetchone()
        if row is None:
            raise PermanentError(f"PostgreSQL role {role} does not exist")
        if any(row):
            raise PermanentError(
                f"PostgreSQL role {role} is privileged (SUPERUSER, CREATEROLE, REPLICATION or "
                "BYPASSRLS) and cannot be an entitlement"
            )

    def _claim_login(self, cur: psycopg.Cursor, login: str, principal: PrincipalRef) -> None:
        """Refuse a login that belongs to someone else; mark an unmarked one as this person's
        (a login made before marks existed is claimed by the first person granted through it;
        without the privilege to comment, an unmarked login is used as it is)."""
        cur.execute(
            "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = %s",
            (login,),
        )
        row = cur.fetchone()
        comment = (row[0] if row else None) or ""
        mine = self.owner_mark(principal)
        if comment == mine:
            return
        if comment.startswith(OWNER_MARK):
            raise PermanentError(
                f"PostgreSQL login {login} belongs to another person, not {principal.email}: "
                "refused (two people are never merged into one login); give one of them an "
                "explicit login or rename the role"
            )
        if comment:
            return  # someone else's comment: leave it
        try:
            with cur.connection.transaction():
                cur.execute(
                    sql.SQL("COMMENT ON ROLE {} IS {}").format(
                        sql.Identifier(login), sql.Literal(mine)
                    )
                )
        except psycopg.errors.InsufficientPrivilege:
            return

    @staticmethod
    def _is_member(cur: psycopg.Cursor, role: str, login: str) -> bool:
        cur.execute(_MEMBERSHIP_SQL, (role, login))
        return cur.fetchone() is not None

    # Operations ------------------------------------------------------------------------
    def grant(
        self, principal: PrincipalRef, entitlement: EntitlementRef, *, idempotency_key: str
    ) -> Result:
        role = self.role_for(entitlement)
        login = self.login_for(principal)
        with self._transaction("grant") as cur:
            self._lock_login(cur, login)
            self._check_entitlement_role(cur, role)
            created = False
            if not self._role_exists(cur, login):
                if not self.create_login:
                    raise PermanentError(
                        f"login {login} does not exist and create_login is off for this service"
                    )
                cur.execute(
                    sql.SQL("CREATE ROLE {} {}").format(
                        sql.Identifier(login), LOGIN_ATTRIBUTES[self.create_login_as]
                    )
                )
                created = True
            self._claim_login(cur, login, principal)
            if not created and self._is_member(cur, role, login):
                return Result(changed=False, detail=f"{login} is already a member of {role}")
            cur.execute(
                sql.SQL("GRANT {} TO {}").format(sql.Identifier(role), sql.Identifier(login))
            )
        note = f" (login created {self.create_login_as.upper()})" if created else ""
        return Result(changed=True, detail=f"granted {role} to {login}{note}")

    def revoke(
        self, principal: PrincipalRef, entitlement: EntitlementRef, *, idempotency_key: str
    ) -> Result:
        role = self.role_for(entitlement)
        login = self.login_for(principal)
        with self._transaction("revoke") as cur:
            self._lock_login(cur, login)
            if not self._role_exists(cur, role):
                raise PermanentError(f"PostgreSQL role {role} does not exist")
            if not self._role_exists(cur, login) or not self._is_member(cur, role, login):
                return Result(changed=False, detail=f"{login} is not a member of {role}")
            cur.execute(
                sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(role), sql.Identifier(login))
            )
            if self._is_member(cur, role, login):
                # PostgreSQL 16+: REVOKE only removes grants made by the current role.
                raise PermanentError(
                    f"{login} is still a member of {role} after REVOKE: the membership was "
                    "granted by another role; revoke it as that grantor"
                )
        return Result(changed=True, detail=f"revoked {role} from {login}")

    def list_holders(
        self,
        entitlement: EntitlementRef | None = None,
        *,
        cursor: str | None = None,
        page_size: int = 500,
    ) -> Page:
        """Direct members, ordered by (role, member). For ``entitlement=None``: members of the
        roles in the ``roles`` map, or, without a map, every membership of a prefixed login."""
        page_size = self.check_page_size(page_size)
        after = decode_pair_cursor(cursor)
        reverse = {role: slug for slug, role in self.roles.items()}
        params: list[Any] = []
        if entitlement is not None:
            role = self.role_for(entitlement)
            where = sql.SQL("r.rolname = %s")
            params.append(role)
        elif self.roles:
            where = sql.SQL("r.rolname = ANY(%s)")
            params.append(sorted(set(self.roles.values())))
        elif self.login_prefix:
            where = sql.SQL("starts_with(u.rolname::text, %s)")
            params.append(self.login_prefix)
        else:
            raise ConfigError(
                "postgres connector: listing all holders needs a roles map or a login_prefix"
            )
        if after is not None:
            where = sql.SQL("{} AND (r.rolname, u.rolname) > (%s::name, %s::name)").format(where)
            params.extend(after)
        query = sql.SQL(
            "SELECT r.rolname, u.rolname, bool_or(m.admin_option)"
            " FROM pg_auth_members m"
            " JOIN pg_roles r ON r.oid = m.roleid"
            " JOIN pg_roles u ON u.oid = m.member"
            " WHERE {} GROUP BY r.rolname, u.rolname"
            " ORDER BY r.rolname, u.rolname LIMIT %s"
        ).format(where)
        params.append(page_size + 1)
        with self._transaction("list holders") as cur:
            if entitlement is not None and not self._role_exists(cur, params[0]):
                raise PermanentError(f"PostgreSQL role {params[0]} does not exist")
            cur.execute(query, params)
            rows = cur.fetchall()
        more = len(rows) > page_size
        rows = rows[:page_size]
        holders = tuple(
            Holder(
                principal=member,
                entitlement=entitlement.slug
                if entitlement is not None
                else reverse.get(role, role),
                level="admin" if admin else "member",
            )
            for role, member, admin in rows
        )
        next_cursor = encode_pair_cursor(rows[-1][0], rows[-1][1]) if more and rows else None
        return Page(holders=holders, next_cursor=next_cursor)

    def health(self) -> Health:
        """Connect (``health_timeout``) and read the connecting role: can it create logins?"""
        started = time.perf_counter()
        try:
            with self._transaction("health check", connect_timeout=self.health_timeout) as cur:
                cur.execute(
                    "SELECT current_user, rolcreaterole OR rolsuper FROM pg_roles"
                    " WHERE rolname = current_user"
                )
                row = cur.fetchone()
        except ConnectorError as exc:
            return Health(False, exc.message, elapsed_ms(started))
        except Exception as exc:  # never raises
            return Health(False, f"PostgreSQL health check failed: {type(exc).__name__}")
        user, can_create = row if row else ("?", False)
        if self.create_login and not can_create:
            return Health(
                False,
                f"PostgreSQL answers as {user}, which lacks CREATEROLE: grants cannot create "
                "logins or change memberships",
                elapsed_ms(started),
            )
        return Health(True, f"PostgreSQL answers as {user}", elapsed_ms(started))

    def last_used(
        self, principal: PrincipalRef, entitlement: EntitlementRef | None = None
    ) -> datetime | None:
        """Latest activity of the login's *current* sessions, else ``None``.

        Limitation: ``pg_stat_activity`` shows live sessions only and does not say which
        role's privileges a session used, so the answer is per login, not per entitlement,
        and it forgets a session once it disconnects. Durable usage needs server logs
        (``log_connections``) or pgaudit shipped to Tollgate.
        """
        login = self.login_for(principal)
        with self._transaction("last used") as cur:
            cur.execute(
                "SELECT max(CASE WHEN state = 'active' THEN now()"
                " ELSE coalesce(state_change, backend_start) END)"
                " FROM pg_stat_activity WHERE usename = %s",
                (login,),
            )
            row = cur.fetchone()
        return row[0] if row else None
